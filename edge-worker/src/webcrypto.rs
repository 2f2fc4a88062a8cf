//! Ed25519 signature checks by the runtime's WebCrypto (`crypto.subtle`, BoringSSL in
//! workerd) instead of `ed25519-compact` compiled to Wasm, whose 64-bit limb arithmetic is
//! emulated on wasm32: about 300 µs of CPU per cold token in workerd (BENCHMARKS.md).
//! Imported keys are kept per isolate ([`Crypto`], owned by the isolate context). `None`
//! means the runtime could not do it (no `crypto.subtle`, no Ed25519): the caller then
//! verifies in Wasm.

use std::cell::RefCell;
use std::collections::HashMap;

use wasm_bindgen::prelude::wasm_bindgen;
use worker::js_sys::{self, Array, Object, Promise, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;

/// Imported keys kept per isolate (a JWKS holds a handful; cleared when full).
const KEYS_MAX: usize = 64;

#[wasm_bindgen]
extern "C" {
    /// `crypto.subtle`, as far as this module calls it.
    #[derive(Debug, Clone)]
    type Subtle;

    /// `subtle.importKey("raw", key, algorithm, false, usages)`.
    #[wasm_bindgen(method, catch, js_name = importKey)]
    fn import_raw_key(
        this: &Subtle,
        format: &str,
        key: &[u8],
        algorithm: &JsValue,
        extractable: bool,
        usages: &Array,
    ) -> Result<Promise, JsValue>;

    /// `subtle.verify(algorithm, key, signature, data)`. The byte slices reach JavaScript as
    /// views of Wasm memory, not copies: a copy is a new `ArrayBuffer` each, whose backing
    /// stores V8 allocates and sweeps, most of what a cold token cost beyond the Ed25519
    /// itself (BENCHMARKS.md). WebCrypto copies its arguments before it returns the promise,
    /// and no Wasm runs during the call, so the views cannot go stale.
    #[wasm_bindgen(method, catch)]
    fn verify(
        this: &Subtle,
        algorithm: &JsValue,
        key: &JsValue,
        signature: &[u8],
        data: &[u8],
    ) -> Result<Promise, JsValue>;
}

/// The runtime's Ed25519, with what it costs JavaScript calls to look up kept for the
/// isolate: `crypto.subtle`, the `{name: "Ed25519"}` algorithm object, imported keys.
#[derive(Debug, Default)]
pub struct Crypto {
    keys: RefCell<HashMap<[u8; 32], JsValue>>,
    subtle: RefCell<Option<(Subtle, JsValue)>>,
}

impl Crypto {
    /// `crypto.subtle` and the Ed25519 algorithm object.
    fn subtle(&self) -> Option<(Subtle, JsValue)> {
        if let Some(s) = self.subtle.borrow().clone() {
            return Some(s);
        }
        let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).ok()?;
        let subtle = Reflect::get(&crypto, &"subtle".into()).ok().filter(JsValue::is_object)?;
        let alg = Object::new();
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&alg, &"name".into(), &"Ed25519".into());
        let both = (subtle.unchecked_into::<Subtle>(), JsValue::from(alg));
        *self.subtle.borrow_mut() = Some(both.clone());
        Some(both)
    }

    /// Whether `signature` is `key`'s Ed25519 signature of `data`; `None` when the runtime's
    /// WebCrypto cannot tell (missing, or no Ed25519).
    pub async fn ed25519_verify(&self, key: &[u8], signature: &[u8], data: &[u8]) -> Option<bool> {
        let raw: [u8; 32] = key.try_into().ok()?;
        let (subtle, ed25519) = self.subtle()?;
        let cached = self.keys.borrow().get(&raw).cloned();
        let imported = match cached {
            Some(k) => k,
            None => {
                let usages = Array::of1(&"verify".into());
                let k = settle(subtle.import_raw_key("raw", key, &ed25519, false, &usages)).await?;
                let mut keys = self.keys.borrow_mut();
                if keys.len() >= KEYS_MAX {
                    keys.clear();
                }
                keys.insert(raw, k.clone());
                k
            }
        };
        settle(subtle.verify(&ed25519, &imported, signature, data)).await?.as_bool()
    }
}

/// What the promise a call returned resolves to; `None` when the call threw or the promise
/// rejected.
async fn settle(called: Result<Promise, JsValue>) -> Option<JsValue> {
    JsFuture::from(called.ok()?).await.ok()
}
