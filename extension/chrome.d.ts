// The few chrome.* extension APIs the extension uses (the package @types/chrome is not a dependency).
declare namespace chrome {
  interface ChromeEvent<F> {
    addListener(listener: F): void;
    removeListener(listener: F): void;
  }
  namespace runtime {
    interface MessageSender {
      tab?: { id?: number };
    }
    interface Port {
      readonly name: string;
      postMessage(message: unknown): void;
      disconnect(): void;
      readonly onMessage: ChromeEvent<(message: unknown, port: Port) => void>;
      readonly onDisconnect: ChromeEvent<(port: Port) => void>;
    }
    function connect(info: { name: string }): Port;
    function sendMessage(message: unknown): Promise<unknown>;
    const onMessage: ChromeEvent<(message: unknown, sender: MessageSender) => void>;
    const onConnect: ChromeEvent<(port: Port) => void>;
  }
  namespace tabs {
    function query(filter: object): Promise<{ id?: number }[]>;
    const onRemoved: ChromeEvent<(tabId: number) => void>;
  }
  /** Only in DevTools pages. */
  namespace devtools {
    namespace panels {
      function create(title: string, iconPath: string, pagePath: string): void;
    }
    namespace inspectedWindow {
      const tabId: number;
    }
    namespace network {
      const onNavigated: ChromeEvent<(url: string) => void>;
    }
  }
}
