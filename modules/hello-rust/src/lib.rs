//! The smallest Rust guest: proves that the guest toolchain builds a component.

wit_bindgen::generate!({
    path: "../../wit/probe",
    world: "probe",
});

struct Probe;

impl Guest for Probe {
    fn greet(name: String) -> String {
        format!("hello, {name}, from rust")
    }
}

export!(Probe);
