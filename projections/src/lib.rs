//! Pure reducers from Saoma's sealed events to the views people read. No IO: storage of views
//! and the live driver live in `services`.

pub mod code_view;
pub mod history;
pub mod projector;
pub mod rules;
pub mod satisfaction;
pub mod visit;
pub mod warnings;
