// The extension's panel: a <ccm-memory-panel> fed with the inspected tab's hook events by the background.
// Inside DevTools the tab is the inspected window; opened as a plain extension page (tests, debugging),
// it is the `tab` query parameter.
import '../src/devtools/panel.js';
import { PANEL_PORT, type PanelHello, type PanelMessage } from './protocol.js';

const panel = document.querySelector('ccm-memory-panel')!;
const devtools = (chrome as { devtools?: typeof chrome.devtools }).devtools;
const tabId = devtools?.inspectedWindow.tabId ?? Number(new URLSearchParams(location.search).get('tab'));

function connect(): void {
  const port = chrome.runtime.connect({ name: PANEL_PORT });
  port.onMessage.addListener((message) => {
    const m = message as PanelMessage;
    if (m.kind === 'page') panel.clear();
    else panel.receive(m.event);
  });
  // the service worker may be stopped between events; its replay restores the panel on reconnect
  port.onDisconnect.addListener(() => {
    panel.clear();
    setTimeout(connect, 500);
  });
  port.postMessage({ tabId } satisfies PanelHello);
}

connect();
