// Runs once in each worker's context, before any bot code, and makes the
// context safe to reuse run after run: every object reachable from the
// global (the builtins, their prototypes, botContext) is frozen, the
// global's own bindings are made read-only, and the function returned here
// puts the global back as it was after a run. Nothing a script writes can
// then outlive its run: its `var`s are locals (scripts are compiled as
// function bodies), new globals are deleted, and everything else is frozen.
(() => {
  "use strict";
  const global = globalThis;
  // Host-facing or cross-run facilities scripts must not have:
  // WebAssembly (code from bytes), weak references and finalizers (their
  // callbacks would run in a later run), shared memory.
  for (const name of ["WebAssembly", "FinalizationRegistry", "WeakRef", "SharedArrayBuffer", "Atomics"]) {
    delete global[name];
  }
  const { freeze, getOwnPropertyDescriptor, getPrototypeOf, defineProperty, isExtensible } = Object;
  const { ownKeys, deleteProperty } = Reflect;
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
  while (pending.length > 0) {
    const object = pending.pop();
    freeze(object);
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
  const baseline = new Set(ownKeys(global));
  const baselineSize = baseline.size;
  const emptyMatch = /(?:)/;
  // True when the global is as it was; false means the context must go.
  return () => {
    for (const key of ownKeys(global)) {
      if (!baseline.has(key)) {
        deleteProperty(global, key);
      }
    }
    // RegExp's legacy statics (RegExp.input, RegExp.$1, ...) keep the last
    // match, which may be another conversation's text.
    emptyMatch.exec("");
    return isExtensible(global) && ownKeys(global).length === baselineSize;
  };
})()
