// Messages between the extension's parts. The page's hook events travel
//   page hook --window.postMessage--> relay (content script) --runtime message--> background
//   --port--> panel, where the background keeps one hook per tab (so a panel opened late gets the replay).
import type { HookEvent } from '../src/devtools/hook.js';

/** `source` of the window messages the MAIN-world script posts for the relay. */
export const PAGE_MESSAGE = 'ccmem-devtools-hook';
/** Name of the port a panel opens to the background; its first message is a PanelHello. */
export const PANEL_PORT = 'ccmem-panel';

/** Relay to background: a new document started in the tab, or one of its hook events. */
export type RelayMessage = { kind: 'page' } | { kind: 'event'; event: HookEvent };
/** Background to panel: the same, for the inspected tab. */
export type PanelMessage = RelayMessage;
export interface PanelHello {
  tabId: number;
}
