// Node 20 lacks Promise.withResolvers, which libp2p 3 and its dependencies use. Loaded with
// `node --import ./scripts/polyfills.mjs` for child processes and by the vitest setup file.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new this((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
