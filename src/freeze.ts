// Values shared between sessions (cached facts, a connection read for many logins, a verified
// identity) are frozen all the way down, so that no holder can change what the others see.

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
