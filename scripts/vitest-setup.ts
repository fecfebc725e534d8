import './polyfills.mjs';
