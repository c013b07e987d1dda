// The last conversation, kept in IndexedDB so that a reload restores it: the engine's exportMemory()
// bytes (memory slots and working K/V, which can be megabytes: too big for localStorage), the
// transcript as shown (stopped turns too, which the memory does not hold), and the engine options it
// belongs to (a memory only imports into the same setup).

const DB_NAME = 'ccmem-demo';
const STORE = 'chat';
const KEY = 'last';

export interface SavedMessage {
  role: 'user' | 'assistant';
  content: string;
  /** A turn whose reply was stopped midway: shown, but the chat went back to before it. */
  stopped?: boolean;
  /** A reply that ended at the token limit (Max new tokens), not where the model ended it. */
  cut?: boolean;
}

export interface SavedChat {
  /** JSON of the engine options the memory was made with. */
  setup: string;
  memory: Uint8Array;
  transcript: SavedMessage[];
}

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function run<T>(mode: IDBTransactionMode, op: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = op(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

export const loadSavedChat = () => run<SavedChat | undefined>('readonly', (s) => s.get(KEY));
export const saveChat = (chat: SavedChat) => run('readwrite', (s) => s.put(chat, KEY)).then(() => undefined);
export const forgetChat = () => run('readwrite', (s) => s.delete(KEY)).then(() => undefined);
