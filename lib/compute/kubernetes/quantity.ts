/** Kubernetes resource quantities ('500m', '2', '8Gi', '1.5G'), for checking a profile before use. */

const SUFFIXES: Record<string, number> = {
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

const QUANTITY = /^(\d+(?:\.\d+)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

/** The value of a quantity in base units (cores, bytes); throws on anything the apiserver would refuse. */
export function parseQuantity(quantity: string): number {
  const match = QUANTITY.exec(quantity);
  if (!match) throw new Error(`'${quantity}' is not a Kubernetes quantity (e.g. 500m, 2, 8Gi)`);
  return Number(match[1]) * SUFFIXES[match[2] ?? ''];
}
