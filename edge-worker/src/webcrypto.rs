//! Ed25519 signature checks by the runtime's WebCrypto (`crypto.subtle`, BoringSSL in
//! workerd) instead of `ed25519-compact` compiled to Wasm, whose 64-bit limb arithmetic is
//! emulated on wasm32: about 300 µs of CPU per cold token in workerd (BENCHMARKS.md).
//! Imported keys are kept per isolate ([`Crypto`], owned by the isolate context). `None`
//! means the runtime could not do it (no `crypto.subtle`, no Ed25519): the caller then
//! verifies in Wasm.

use std::cell::RefCell;
use std::collections::HashMap;

use worker::js_sys::{self, Array, Function, Object, Promise, Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;

/// Imported keys kept per isolate (a JWKS holds a handful; cleared when full).
const KEYS_MAX: usize = 64;

/// The runtime's Ed25519, with what it costs JavaScript calls to look up kept for the
/// isolate: `crypto.subtle`, its `verify`, the `{name: "Ed25519"}` algorithm object, imported
/// keys.
#[derive(Debug, Default)]
pub struct Crypto {
    keys: RefCell<HashMap<[u8; 32], JsValue>>,
    subtle: RefCell<Option<Subtle>>,
}

/// `crypto.subtle`, the Ed25519 algorithm object and `crypto.subtle.verify`.
#[derive(Debug, Clone)]
struct Subtle {
    subtle: JsValue,
    ed25519: JsValue,
    verify: Function,
}

impl Crypto {
    fn subtle(&self) -> Option<Subtle> {
        if let Some(s) = self.subtle.borrow().clone() {
            return Some(s);
        }
        let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).ok()?;
        let subtle = Reflect::get(&crypto, &"subtle".into()).ok().filter(JsValue::is_object)?;
        let verify: Function = Reflect::get(&subtle, &"verify".into()).ok()?.dyn_into().ok()?;
        let alg = Object::new();
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&alg, &"name".into(), &"Ed25519".into());
        let s = Subtle { subtle, ed25519: alg.into(), verify };
        *self.subtle.borrow_mut() = Some(s.clone());
        Some(s)
    }

    /// Whether `signature` is `key`'s Ed25519 signature of `data`; `None` when the runtime's
    /// WebCrypto cannot tell (missing, or no Ed25519).
    pub async fn ed25519_verify(&self, key: &[u8], signature: &[u8], data: &[u8]) -> Option<bool> {
        let raw: [u8; 32] = key.try_into().ok()?;
        let Subtle { subtle, ed25519, verify } = self.subtle()?;
        let cached = self.keys.borrow().get(&raw).cloned();
        let imported = match cached {
            Some(k) => k,
            None => {
                let usages = Array::of1(&"verify".into());
                let args = Array::of5(
                    &"raw".into(),
                    &Uint8Array::from(key).into(),
                    &ed25519,
                    &JsValue::FALSE,
                    &usages.into(),
                );
                let k = call(&subtle, "importKey", &args).await?;
                let mut keys = self.keys.borrow_mut();
                if keys.len() >= KEYS_MAX {
                    keys.clear();
                }
                keys.insert(raw, k.clone());
                k
            }
        };
        let args = Array::of4(
            &ed25519,
            &imported,
            &Uint8Array::from(signature).into(),
            &Uint8Array::from(data).into(),
        );
        apply(&verify, &subtle, &args).await?.as_bool()
    }
}

async fn call(subtle: &JsValue, method: &str, args: &Array) -> Option<JsValue> {
    let f: Function = Reflect::get(subtle, &method.into()).ok()?.dyn_into().ok()?;
    apply(&f, subtle, args).await
}

async fn apply(f: &Function, this: &JsValue, args: &Array) -> Option<JsValue> {
    let p: Promise = f.apply(this, args).ok()?.dyn_into().ok()?;
    JsFuture::from(p).await.ok()
}
