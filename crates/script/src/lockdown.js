// Runs once in each new context, before any bot code, and makes the context
// safe to reuse run after run (as Hardened JS's lockdown does): every
// intrinsic is frozen, whether it is reachable from the global object or
// only through values (iterator, generator and async prototypes, ...), and
// the global's own bindings are made read-only and non-configurable. After
// this, the only places a run can write are its own new objects and new
// properties of the global, which the host deletes after each run (natively,
// without calling any function a script can reach).
//
// The script's value is the lockdown as a function. Called with `true` it
// prepares the context for the startup snapshot: V8 adds
// `Error.stackTraceLimit` to every context it reads from a snapshot (and
// aborts if `Error` is frozen), so `Error` is left for the host to freeze
// then (snapshot.rs).
((forSnapshot, isProxy) => {
  "use strict";
  const global = globalThis;
  // Host-facing or cross-run facilities scripts must not have:
  // WebAssembly (code from bytes), weak references and finalizers (their
  // callbacks would run in a later run), shared memory.
  for (const name of ["WebAssembly", "FinalizationRegistry", "WeakRef", "SharedArrayBuffer", "Atomics"]) {
    delete global[name];
  }
  const { freeze, getOwnPropertyDescriptor, getOwnPropertyDescriptors, getPrototypeOf, defineProperty, defineProperties } = Object;
  const { ownKeys, construct } = Reflect;

  // Resizable ArrayBuffers take their memory from V8's page allocator, not
  // from the host's budgeted ArrayBuffer allocator, so a script could commit
  // gigabytes outside every limit. ArrayBuffer becomes a constructor that
  // refuses `maxByteLength`; the original is reachable from nowhere.
  const NativeArrayBuffer = ArrayBuffer;
  const ArrayBufferPrototype = NativeArrayBuffer.prototype;
  const SafeArrayBuffer = function ArrayBuffer(length, options) {
    if (new.target === undefined) {
      throw new TypeError("Constructor ArrayBuffer requires 'new'");
    }
    if (options !== null && (typeof options === "object" || typeof options === "function") && options.maxByteLength !== undefined) {
      throw new RangeError("resizable ArrayBuffers are not available to bot scripts");
    }
    return construct(NativeArrayBuffer, [length], new.target);
  };
  const statics = getOwnPropertyDescriptors(NativeArrayBuffer);
  delete statics.prototype;
  delete statics.length;
  delete statics.name;
  defineProperties(SafeArrayBuffer, statics);
  defineProperty(SafeArrayBuffer, "prototype", { value: ArrayBufferPrototype, writable: false, enumerable: false, configurable: false });
  defineProperty(ArrayBufferPrototype, "constructor", { value: SafeArrayBuffer, writable: true, enumerable: false, configurable: true });
  defineProperty(global, "ArrayBuffer", { value: SafeArrayBuffer, writable: true, enumerable: false, configurable: true });

  // Generic array methods walk an array-like's `length` inside builtins
  // that never check for termination, looking each index up along the
  // prototype chain (`[].lastIndexOf.call({ length: 2 ** 53 })` would hold
  // its thread for ever; an outside attack held one for minutes with a
  // 2^22 length over a 3,000-deep chain). So each such method, and typed
  // arrays' `set` and `from` given an array-like, refuse a length past
  // MAX_LENGTH (no array a script's heap can hold is that long) or lookups
  // (length times chain depth) past MAX_LOOKUPS, before the builtin
  // starts. docs/script.md has the measurements behind the bounds.
  const MAX_LENGTH = 2 ** 22;
  const MAX_LOOKUPS = 2 ** 24;
  const { apply } = Reflect;
  const { isArray } = Array;
  const { isView } = ArrayBuffer;
  const TypedArrayPrototype = getPrototypeOf(Uint8Array.prototype);
  // The length a builtin will read, read here the way it cannot differ:
  // from a data property found along a chain of ordinary objects. A getter,
  // a `valueOf` or a Proxy (`isProxy` is native) could answer this check
  // one length and the builtin another, so they are refused outright; so
  // is a chain whose lookups (length times depth) pass MAX_LOOKUPS.
  const tooLong = (value) => {
    if (value === null || (typeof value !== "object" && typeof value !== "function")) {
      return false;
    }
    if (isView(value) && !isProxy(value) && getPrototypeOf(getPrototypeOf(value)) === TypedArrayPrototype) {
      // A typed array's length is its buffer's (bounded by the budget)
      // and its elements are its own: nothing is looked up along a chain.
      return false;
    }
    let length;
    let depth = 0;
    for (let object = value; object !== null; object = getPrototypeOf(object)) {
      if (isProxy(object)) {
        return true;
      }
      depth += 1;
      if (length === undefined) {
        const descriptor = getOwnPropertyDescriptor(object, "length");
        if (descriptor !== undefined) {
          if (!("value" in descriptor)) {
            return true;
          }
          const { value: declared } = descriptor;
          if ((typeof declared === "object" && declared !== null) || typeof declared === "function") {
            // Its `valueOf` would answer the builtin, not this check.
            return true;
          }
          length = +declared;
          if (!(length > 0)) {
            return false;
          }
          if (length > MAX_LENGTH) {
            return true;
          }
        }
      }
      if (length !== undefined && length * depth > MAX_LOOKUPS) {
        return true;
      }
    }
    return false;
  };
  const refuse = (name) => {
    throw new RangeError(`${name}: a length over ${MAX_LENGTH} (or ${MAX_LOOKUPS} lookups along the prototype chain) is not available to bot scripts`);
  };
  const ArrayPrototype = Array.prototype;
  const lazy = new Set(["constructor", "at", "entries", "keys", "values"]);
  for (const name of ownKeys(ArrayPrototype)) {
    const original = ArrayPrototype[name];
    if (typeof name !== "string" || lazy.has(name) || typeof original !== "function") {
      continue;
    }
    const guarded = name === "concat"
      ? {
        concat(...items) {
          if (tooLong(this)) refuse(`Array.prototype.${name}`);
          for (const item of items) {
            if ((isArray(item) || (item !== null && typeof item === "object" && item[Symbol.isConcatSpreadable])) && tooLong(item)) {
              refuse(`Array.prototype.${name}`);
            }
          }
          return apply(original, this, items);
        },
      }.concat
      : {
        [name](...args) {
          if (tooLong(this)) refuse(`Array.prototype.${name}`);
          return apply(original, this, args);
        },
      }[name];
    defineProperty(guarded, "length", { value: original.length });
    defineProperty(ArrayPrototype, name, { value: guarded, writable: true, enumerable: false, configurable: true });
  }

  // Methods whose first argument is an array-like a builtin walks.
  const guardFirstArgument = (object, name, label) => {
    const original = object[name];
    const guarded = {
      [name](source, ...rest) {
        if (tooLong(source)) refuse(label);
        return apply(original, this, [source, ...rest]);
      },
    }[name];
    defineProperty(object, name, { value: guarded, writable: true, enumerable: false, configurable: true });
  };
  const TypedArray = getPrototypeOf(Uint8Array);
  guardFirstArgument(Array, "from", "Array.from");
  guardFirstArgument(TypedArray, "from", "TypedArray.from");
  guardFirstArgument(TypedArray.prototype, "set", "TypedArray.prototype.set");

  // The intrinsics no own-property walk from the global reaches.
  const hidden = [];
  const reach = (get) => {
    try {
      hidden.push(get());
    } catch (_) {
      // Not in this V8: nothing to freeze.
    }
  };
  const iteratorOf = (iterable) => iterable[Symbol.iterator]();
  reach(() => getPrototypeOf(iteratorOf([])));
  reach(() => getPrototypeOf(iteratorOf("")));
  reach(() => getPrototypeOf(iteratorOf(new Map())));
  reach(() => getPrototypeOf(iteratorOf(new Set())));
  reach(() => getPrototypeOf(/(?:)/g[Symbol.matchAll]("")));
  reach(() => getPrototypeOf(getPrototypeOf(iteratorOf([]))));
  reach(() => getPrototypeOf(function* () {}));
  reach(() => getPrototypeOf(function* () {}).prototype);
  reach(() => getPrototypeOf(async function () {}));
  reach(() => getPrototypeOf(async function* () {}));
  reach(() => getPrototypeOf(async function* () {}).prototype);
  reach(() => getPrototypeOf(getPrototypeOf(async function* () {}).prototype));
  reach(() => getPrototypeOf(Uint8Array));
  reach(() => getOwnPropertyDescriptor(Function.prototype, "caller").get);
  reach(() => getOwnPropertyDescriptor((function () { "use strict"; return arguments; })(), "callee").get);
  reach(() => getPrototypeOf(Iterator.prototype.map.call(iteratorOf([]), (x) => x)));
  reach(() => getPrototypeOf(Iterator.from({ next() { return { done: true }; } })));
  reach(() => getPrototypeOf(new Intl.Segmenter().segment("")));
  reach(() => getPrototypeOf(iteratorOf(new Intl.Segmenter().segment(""))));
  // V8 gives every error an own `stack` accessor whose two functions are
  // shared by all errors.
  reach(() => getOwnPropertyDescriptor(new Error(), "stack").get);
  reach(() => getOwnPropertyDescriptor(new Error(), "stack").set);

  const seen = new WeakSet();
  const pending = [];
  const visit = (value) => {
    if (((typeof value === "object" && value !== null) || typeof value === "function") && !seen.has(value)) {
      seen.add(value);
      pending.push(value);
    }
  };
  const visitProperties = (object) => {
    for (const key of ownKeys(object)) {
      const descriptor = getOwnPropertyDescriptor(object, key);
      visit(descriptor.value);
      visit(descriptor.get);
      visit(descriptor.set);
    }
    visit(getPrototypeOf(object));
  };
  seen.add(global);
  visitProperties(global);
  hidden.forEach(visit);
  while (pending.length > 0) {
    const object = pending.pop();
    if (!(forSnapshot && object === Error)) {
      freeze(object);
    }
    visitProperties(object);
  }
  for (const key of ownKeys(global)) {
    const descriptor = getOwnPropertyDescriptor(global, key);
    if (descriptor.configurable) {
      defineProperty(global, key, "value" in descriptor
        ? { writable: false, configurable: false }
        : { configurable: false });
    }
  }
})
