//! One file per request or notification (or per small family of them). Each handler is
//! thin: it converts the parameters, asks the answers layer (`crate::answers`) or starts
//! the work, and converts the result with `to_proto`. `Backend`'s `LanguageServer`
//! implementation only dispatches here.

pub mod code_action;
pub mod code_lens;
pub mod diagnostic;
pub mod execute_command;
pub mod hover;
pub mod lifecycle;
pub mod patterns;
pub mod similar;
pub mod symbol;
pub mod text_document;
pub mod workspace;
