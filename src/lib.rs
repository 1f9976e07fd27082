//! session-manager: a multi-tenant session management GraphQL API server.
//!
//! The binary (`src/main.rs`) is a thin shell over this library so that the
//! integration tests build and drive exactly the application that ships.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod event_log;
pub mod events;
pub mod graphql;
pub mod http;
pub mod jobs;
pub mod seed;
pub mod services;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod unit_of_work;

pub use error::AppError;
pub use startup::Application;
