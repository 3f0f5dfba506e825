//! The integration suite, one binary: the real `leash` binary and daemon, in temporary
//! directories, driving the fake claude (and, in `e2e`, the real CLI against a fake
//! Messages API). The support code is compiled once for all of it.

mod support;

mod architecture;
mod attempts;
mod chaos;
mod cli;
mod cluster;
mod continuation;
mod e2e;
mod faults;
mod fleet;
mod gates;
mod generated_docs;
mod hostile;
mod json_output;
mod keep;
mod land;
mod landing;
mod long_run;
mod many;
mod morning;
mod outcomes;
mod protocol_props;
mod report;
mod session;
mod soak;
mod spending;
mod survival;
mod terminal;
mod worker;
