//! Trace errors: every defect found in a trace file, with where it is (`file:line:col`),
//! collected (up to [`MAX_ERRORS`]) so a user fixes them all in one go.
use std::fmt;

/// At most this many errors are collected from one trace before loading stops.
pub(crate) const MAX_ERRORS: usize = 50;

/// What is wrong with a trace, and where.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A defect at a position in a file (1-based line and column).
    #[error("{file}:{line}:{col}: {message}")]
    At {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    /// A defect of a whole file or directory (unreadable, badly named, ...).
    #[error("{path}: {message}")]
    File { path: String, message: String },
    /// Several defects, in the order found.
    #[error("{}", ManyDisplay(.0))]
    Many(Vec<TraceError>),
}

struct ManyDisplay<'a>(&'a [TraceError]);

impl fmt::Display for ManyDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl TraceError {
    /// An error at `file:line:col`.
    pub fn at(
        file: impl Into<String>,
        line: usize,
        col: usize,
        message: impl Into<String>,
    ) -> Self {
        TraceError::At {
            file: file.into(),
            line,
            col,
            message: message.into(),
        }
    }

    /// An error about a whole file or directory.
    pub fn file(path: impl Into<String>, message: impl Into<String>) -> Self {
        TraceError::File {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The single errors (a [`TraceError::Many`] flattened).
    pub fn errors(&self) -> Vec<&TraceError> {
        match self {
            TraceError::Many(v) => v.iter().flat_map(|e| e.errors()).collect(),
            e => vec![e],
        }
    }

    /// One error for a non-empty list (itself when there is only one).
    pub(crate) fn from_list(mut v: Vec<TraceError>) -> TraceError {
        if v.len() == 1 {
            v.remove(0)
        } else {
            TraceError::Many(v)
        }
    }
}

/// Collects errors up to [`MAX_ERRORS`].
#[derive(Default)]
pub(crate) struct Errors(pub Vec<TraceError>);

impl Errors {
    pub(crate) fn push(&mut self, e: TraceError) {
        if self.0.len() < MAX_ERRORS {
            self.0.push(e);
        }
    }
    /// Whether no more errors will be kept.
    pub(crate) fn is_full(&self) -> bool {
        self.0.len() >= MAX_ERRORS
    }
    /// `Err` with everything collected, if anything was.
    pub(crate) fn into_result(self) -> Result<(), TraceError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.into_error())
        }
    }

    /// All the defects as one error (to be called when there is at least one).
    pub(crate) fn into_error(self) -> TraceError {
        TraceError::from_list(self.0)
    }
}
