// A small typed in-process event bus. Listeners run after the emitter returns
// (queueMicrotask), so a slow or failing listener never breaks the emitter.
import type { Logger } from 'pino';

type Listener<T> = (payload: T) => void | Promise<void>;

export class TypedBus<Events extends Record<string, unknown>> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();
  constructor(private readonly log?: Logger) {}

  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of set) {
      queueMicrotask(() => {
        Promise.resolve()
          .then(() => (listener as Listener<Events[K]>)(payload))
          .catch((err: unknown) => this.log?.error({ err, event }, 'event listener failed'));
      });
    }
  }
}
