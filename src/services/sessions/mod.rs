//! Guardian–user sessions: reading (filtered, ordered, paged, scoped), the
//! lifecycle state machine, configs, and expiry.

mod config;
mod lifecycle;
mod queries;

pub use config::{
    ConfigInput, LockProfileInput, MAX_APPS, configure_session, set_config, validate_lock_profile,
};
pub use lifecycle::{
    DEFAULT_SESSION_TYPE, NewSession, SessionUpdate, Transition, create_session, delete_session,
    deleted_along, expire_due, find_changeable, start_session, transition, update_session,
};
pub use queries::{
    OrderDirection, SessionFilter, SessionOrder, SessionOrderField, SessionPage, SortValue, StateReader,
    active_session_of, count_sessions, effective_end, effective_status, find_session, find_session_of_event,
    in_force_condition, is_in_force, page_sessions, session_state,
};
