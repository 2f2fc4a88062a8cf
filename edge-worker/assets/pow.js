// Anteroom proof-of-work solver (format: shared/src/pow.rs). Finds the smallest counter c such
// that SHA-256(challenge bytes || c as 8 bytes big-endian) has `difficulty` leading zero bits.
// The hashed message is 54 bytes, one SHA-256 block: each attempt is one compression.
// Runs as a page script (window.AnteroomPow), a Web Worker (postMessage {challenge,
// difficulty} -> {counter}) and a CommonJS module (Node tests).
(function (root) {
  "use strict";
  var K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);
  var IV = new Int32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  var W = new Int32Array(64);
  var H = new Int32Array(8);

  // One SHA-256 compression of W[0..16] from the IV into H.
  function compress() {
    for (var t = 16; t < 64; t++) {
      var w15 = W[t - 15], w2 = W[t - 2];
      var s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
      var s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
      W[t] = (W[t - 16] + s0 + W[t - 7] + s1) | 0;
    }
    var a = IV[0], b = IV[1], c = IV[2], d = IV[3], e = IV[4], f = IV[5], g = IV[6], h = IV[7];
    for (var i = 0; i < 64; i++) {
      var S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      var t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
      var S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      var t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    H[0] = (IV[0] + a) | 0; H[1] = (IV[1] + b) | 0; H[2] = (IV[2] + c) | 0; H[3] = (IV[3] + d) | 0;
    H[4] = (IV[4] + e) | 0; H[5] = (IV[5] + f) | 0; H[6] = (IV[6] + g) | 0; H[7] = (IV[7] + h) | 0;
  }

  function decode(b64url) {
    var s = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = typeof atob === "function" ? atob(s) : Buffer.from(s, "base64").toString("binary");
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function zeroBits() {
    var bits = 0;
    for (var i = 0; i < 8; i++) {
      if (H[i] === 0) { bits += 32; continue; }
      return bits + Math.clz32(H[i]);
    }
    return bits;
  }

  // Loads challenge bytes (46) and counter (hi, lo: 32-bit halves) into the padded block.
  function load(bytes, hi, lo) {
    for (var i = 0; i < 11; i++) {
      W[i] = (bytes[4 * i] << 24) | (bytes[4 * i + 1] << 16) | (bytes[4 * i + 2] << 8) | bytes[4 * i + 3];
    }
    W[11] = (bytes[44] << 24) | (bytes[45] << 16) | (hi >>> 16);
    W[12] = (hi << 16) | (lo >>> 16);
    W[13] = (lo << 16) | 0x8000;
    W[14] = 0;
    W[15] = 54 * 8;
  }

  // Returns the digest of challenge || counter as hex (for the test vectors).
  function digestHex(challenge, counter) {
    var bytes = decode(challenge);
    load(bytes, Math.floor(counter / 4294967296), counter >>> 0);
    compress();
    var hex = "";
    for (var i = 0; i < 8; i++) hex += (H[i] >>> 0).toString(16).padStart(8, "0");
    return hex;
  }

  // Smallest counter with `difficulty` leading zero bits. `onProgress(tried)` is called every
  // 2^16 attempts when given.
  function solve(challenge, difficulty, onProgress) {
    var bytes = decode(challenge);
    if (bytes.length !== 46 || bytes[0] !== 1) throw new Error("unknown challenge format");
    for (var hi = 0; hi < 0x200000; hi++) {
      for (var lo = 0; lo < 4294967296; lo++) {
        load(bytes, hi, lo);
        compress();
        if (zeroBits() >= difficulty) return hi * 4294967296 + lo;
        if (onProgress && (lo & 0xffff) === 0xffff) onProgress(hi * 4294967296 + lo + 1);
      }
    }
    throw new Error("no solution");
  }

  var api = { solve: solve, digestHex: digestHex };
  root.AnteroomPow = api;
  if (typeof module === "object" && module.exports) module.exports = api;
  // As a Web Worker: solve on request, off the page's main thread.
  if (typeof WorkerGlobalScope !== "undefined" && root instanceof WorkerGlobalScope) {
    root.onmessage = function (ev) {
      var started = Date.now();
      var counter = solve(ev.data.challenge, ev.data.difficulty, function (tried) {
        root.postMessage({ progress: tried });
      });
      root.postMessage({ counter: String(counter), ms: Date.now() - started });
    };
  }
})(typeof self !== "undefined" ? self : globalThis);
