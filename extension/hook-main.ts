// Content script in the page's own JavaScript world, run before any page script: installs the global
// hook (so the page's ccmem finds it, as React finds React DevTools' hook) and forwards its sanitized
// events to the relay, which lives in the isolated world and alone can talk to the extension.
import { installHook } from '../src/devtools/hook.js';
import { PAGE_MESSAGE } from './protocol.js';

installHook(window).subscribe((event) => window.postMessage({ source: PAGE_MESSAGE, event }, '*'));
