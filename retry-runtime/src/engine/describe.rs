//! How an error is shown in events: through `Display` when its type has
//! it, else `Debug`, else not at all.
//!
//! Chosen at the expansion's call site by method resolution on
//! `(&&&ErrorRef(&error)).describe()`: the impl for the most references that
//! applies wins. Nothing is formatted unless an event is emitted.

use std::fmt;

/// The error whose description is chosen by method resolution.
#[derive(Debug)]
pub struct ErrorRef<'a, E>(pub &'a E);

/// An error as events show it.
#[derive(Clone, Copy)]
pub enum Description<'a> {
    /// The error's `Display`.
    Display(&'a dyn fmt::Display),
    /// The error's `Debug`, for types without `Display`.
    Debug(&'a dyn fmt::Debug),
    /// Neither is implemented.
    Opaque,
}

impl fmt::Display for Description<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Description::Display(error) => error.fmt(f),
            Description::Debug(error) => error.fmt(f),
            Description::Opaque => f.write_str("<error without Display or Debug>"),
        }
    }
}

/// `Display` errors (first choice).
pub trait DescribeDisplay<'a> {
    /// How events show the error.
    fn describe(&self) -> Description<'a>;
}

impl<'a, E: fmt::Display> DescribeDisplay<'a> for &&ErrorRef<'a, E> {
    fn describe(&self) -> Description<'a> {
        Description::Display(self.0)
    }
}

/// `Debug` errors (second choice).
pub trait DescribeDebug<'a> {
    /// How events show the error.
    fn describe(&self) -> Description<'a>;
}

impl<'a, E: fmt::Debug> DescribeDebug<'a> for &ErrorRef<'a, E> {
    fn describe(&self) -> Description<'a> {
        Description::Debug(self.0)
    }
}

/// Any other error.
pub trait DescribeOpaque<'a> {
    /// How events show the error.
    fn describe(&self) -> Description<'a>;
}

impl<'a, E> DescribeOpaque<'a> for ErrorRef<'a, E> {
    fn describe(&self) -> Description<'a> {
        Description::Opaque
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // The references are the point: they select the impl, as in expansions.
    #[allow(clippy::needless_borrow)]
    fn display_is_preferred_then_debug_then_nothing() {
        #[derive(Debug)]
        struct OnlyDebug;
        struct Neither;
        let io = std::io::Error::other("disk on fire");
        assert_eq!((&&&ErrorRef(&io)).describe().to_string(), "disk on fire");
        assert_eq!(
            (&&&ErrorRef(&OnlyDebug)).describe().to_string(),
            "OnlyDebug"
        );
        assert_eq!(
            (&&&ErrorRef(&Neither)).describe().to_string(),
            "<error without Display or Debug>"
        );
    }
}
