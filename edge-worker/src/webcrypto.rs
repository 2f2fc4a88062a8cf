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
        let args = Array::of4(&ed25519, &imported, &view(signature).into(), &view(data).into());
        let promise = verify.apply(&subtle, &args);
        settle(promise).await?.as_bool()
    }
}

/// A view of `bytes` in Wasm memory, where `Uint8Array::from` would copy them into a new
/// `ArrayBuffer`: V8 allocates a backing store for each and sweeps them on background threads,
/// most of what a cold token cost beyond the Ed25519 itself. Only for an argument of a call
/// made before Wasm runs again: Wasm memory that grows detaches the view. WebCrypto copies
/// its arguments before `verify` returns its promise, so the view is read during the call
/// only.
fn view(bytes: &[u8]) -> Uint8Array {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    // Wasm32 addresses and lengths fit in u32.
    let at = u32::try_from(bytes.as_ptr() as usize).unwrap_or(u32::MAX);
    let len = u32::try_from(bytes.len()).unwrap_or(0);
    Uint8Array::new_with_byte_offset_and_length(&memory.buffer(), at, len)
}

async fn call(subtle: &JsValue, method: &str, args: &Array) -> Option<JsValue> {
    let f: Function = Reflect::get(subtle, &method.into()).ok()?.dyn_into().ok()?;
    apply(&f, subtle, args).await
}

async fn apply(f: &Function, this: &JsValue, args: &Array) -> Option<JsValue> {
    settle(f.apply(this, args)).await
}

/// What the promise a call returned resolves to; `None` when the call threw, gave no promise
/// or the promise rejected.
async fn settle(called: Result<JsValue, JsValue>) -> Option<JsValue> {
    let p: Promise = called.ok()?.dyn_into().ok()?;
    JsFuture::from(p).await.ok()
}
