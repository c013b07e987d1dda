// Puts the package entry on window.ccmem so that test/engine-api.browser.test.ts can drive createEngine
// from page.evaluate(); the engine starts its own module worker, as in an app.
import * as ccmem from '../../../src/index.js';

export type CcmemModule = typeof ccmem;

Object.assign(window, { ccmem });
