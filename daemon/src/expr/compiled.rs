//! Templates translated and compiled once, reused by every later render of the same text.
//!
//! A flow's templates are few and rendered again and again (a Log message at every execution),
//! and each render used to lex, parse and translate the Pebble text, then compile minijinja's
//! source. The cache keeps both results, keyed by the Pebble text.
//!
//! Compiled templates live inside a minijinja `Environment`, which needs `&mut` to take a new
//! one. Renders hold an `Arc` of the current environment and run without any lock; a new
//! template clones the environment, adds itself and swaps the `Arc` (rare: once per distinct
//! template). The cache is bounded: past [`MAX_TEMPLATES`] templates or [`MAX_BYTES`] of text it
//! starts over, so ever-changing text (`render()` of an input, templates up to 256 KB each)
//! cannot grow it without end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use minijinja::Environment;

use super::translate::Translation;

/// Distinct templates kept; far above what the flows of one daemon hold.
const MAX_TEMPLATES: usize = 2048;
/// Text kept (Pebble and translated source together), so a few large templates cannot make the
/// cache hold hundreds of MB either.
const MAX_BYTES: usize = 16 << 20;

pub(super) struct Compiled {
    /// The environment with functions and settings and no template, to start over from.
    base: Arc<Environment<'static>>,
    inner: Mutex<Inner>,
}

struct Inner {
    translations: HashMap<Box<str>, Arc<Translation>>,
    /// Bytes of text in `translations` (keys and translated sources).
    bytes: usize,
    /// The base environment and every cached template.
    env: Arc<Environment<'static>>,
}

/// A template ready to render: its translation and an environment that holds it compiled
/// under the name `translation.source`.
pub(super) struct Ready {
    pub translation: Arc<Translation>,
    pub env: Arc<Environment<'static>>,
}

impl Compiled {
    pub(super) fn new(env: Environment<'static>) -> Self {
        let base = Arc::new(env);
        Compiled {
            inner: Mutex::new(Inner {
                translations: HashMap::new(),
                bytes: 0,
                env: base.clone(),
            }),
            base,
        }
    }

    /// The environment without cached templates, for one-off compiles (syntax checks).
    pub(super) fn base(&self) -> &Environment<'static> {
        &self.base
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves the maps whole (each change is one
        // insert or one swap), so the cache stays usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached template for `template`, or the one `translate` makes, compiled and kept.
    /// Errors (of `translate` or of compiling) are returned and nothing is kept.
    pub(super) fn get<E>(
        &self,
        template: &str,
        translate: impl FnOnce(&str) -> Result<Translation, E>,
        compile_error: impl FnOnce(&minijinja::Error) -> E,
    ) -> Result<Ready, E> {
        {
            let inner = self.lock();
            if let Some(tr) = inner.translations.get(template) {
                return Ok(Ready {
                    translation: tr.clone(),
                    env: inner.env.clone(),
                });
            }
        }
        // Translating and compiling happen outside the lock; two renders of a new template may
        // both do it, and the second insert wins harmlessly.
        let translation = Arc::new(translate(template)?);
        let size = template.len() + translation.source.len();
        let mut inner = self.lock();
        if inner.translations.len() >= MAX_TEMPLATES || inner.bytes + size > MAX_BYTES {
            inner.translations.clear();
            inner.bytes = 0;
            inner.env = self.base.clone();
        }
        let mut env = Environment::clone(&inner.env);
        if env.get_template(&translation.source).is_err() {
            env.add_template_owned(translation.source.clone(), translation.source.clone())
                .map_err(|e| compile_error(&e))?;
        }
        let env = Arc::new(env);
        inner.env = env.clone();
        if inner
            .translations
            .insert(template.into(), translation.clone())
            .is_none()
        {
            inner.bytes += size;
        }
        Ok(Ready { translation, env })
    }
}
