// Service worker: routes each tab's relayed hook events to the panels inspecting that tab. It keeps one
// hook per tab (the same publish/subscribe object pages use), whose replay serves panels opened late.
import { type CcmemDevtoolsHook, installHook } from '../src/devtools/hook.js';
import { PANEL_PORT, type PanelHello, type PanelMessage, type RelayMessage } from './protocol.js';

const hooks = new Map<number, CcmemDevtoolsHook>();
const panels = new Map<number, Set<chrome.runtime.Port>>();
const unsubscribers = new Map<chrome.runtime.Port, () => void>();

const hookOf = (tabId: number) => hooks.get(tabId) ?? freshHook(tabId);

function freshHook(tabId: number): CcmemDevtoolsHook {
  const hook = installHook({});
  hooks.set(tabId, hook);
  return hook;
}

function follow(port: chrome.runtime.Port, tabId: number): void {
  unsubscribers.get(port)?.();
  const post = (m: PanelMessage) => port.postMessage(m);
  unsubscribers.set(
    port,
    hookOf(tabId).subscribe((event) => post({ kind: 'event', event })),
  );
}

chrome.runtime.onMessage.addListener((message, sender) => {
  const tabId = sender.tab?.id;
  if (tabId === undefined) return;
  const m = message as RelayMessage;
  if (m.kind === 'page') {
    freshHook(tabId);
    for (const port of panels.get(tabId) ?? []) {
      port.postMessage({ kind: 'page' } satisfies PanelMessage);
      follow(port, tabId);
    }
  } else if (m.kind === 'event') {
    hookOf(tabId).publish(m.event); // publish sanitizes once more
  }
});

chrome.runtime.onConnect.addListener((port) => {
  if (port.name !== PANEL_PORT) return;
  let tabId: number | undefined;
  port.onMessage.addListener((hello) => {
    tabId = (hello as PanelHello).tabId;
    if (!Number.isInteger(tabId)) return;
    panels.set(tabId, (panels.get(tabId) ?? new Set()).add(port));
    follow(port, tabId);
  });
  port.onDisconnect.addListener(() => {
    unsubscribers.get(port)?.();
    unsubscribers.delete(port);
    if (tabId !== undefined) panels.get(tabId)?.delete(port);
  });
});

chrome.tabs.onRemoved.addListener((tabId) => hooks.delete(tabId));
