//! Enums that the config names by a word: one list of words per enum,
//! from which come the choices validation offers, `as_str` and `Display`.

/// Declares a fieldless enum whose variants are named by words:
///
/// ```ignore
/// choices! {
///     /// Where appended items go.
///     pub enum Position { Top = "top", Bottom = "bottom" }
/// }
/// ```
///
/// gives `Position::CHOICES` (the words with their variants, in order, for
/// [`super::Ctx::one_of`]), `Position::from_name`, `Position::as_str` and
/// `Display`.
macro_rules! choices {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Each word with its variant, in the order messages list them.
            pub const CHOICES: &[(&str, $name)] = &[$(($word, $name::$variant)),+];

            /// The variant named `word`.
            pub fn from_name(word: &str) -> Option<$name> {
                Self::CHOICES.iter().find(|(w, _)| *w == word).map(|(_, v)| *v)
            }

            /// The word for this variant, as the config writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use choices;
