/**
 * Bounded concurrency over a list: at most `n` calls of `f` in flight, in list order. Used where a
 * burst of KV reads/writes or publishes must not all start at once (canvas runtime and handle, the
 * flow dispatcher). Pure apart from what `f` does.
 */

/**
 * Runs `f` over `items`, at most `n` at once.
 * @param n the most calls in flight (≥ 1)
 * @throws the first error `f` threw (the calls already started run on)
 */
export async function eachLimited<T>(items: readonly T[], n: number, f: (t: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      await f(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, lane));
}

/**
 * Maps `items` through `f`, at most `n` at once; results in the order of `items`.
 * @param n the most calls in flight (≥ 1)
 * @throws the first error `f` threw
 */
export async function mapLimited<T, U>(items: readonly T[], n: number, f: (t: T) => Promise<U>): Promise<U[]> {
  const out = new Array<U>(items.length);
  await eachLimited(items, n, async (t, i) => {
    out[i] = await f(t);
  });
  return out;
}
