// What a fast-path FunctionCall (a function called by OID, as libpq's large-object API does)
// means to the policy: the SELECT of the named function, with one parameter per argument.
import type { Command, Session } from '../../gateway/session.js';

/** The statement the policy, the audit trail and the recording see for a call of `name`. */
export function functionCallText(name: string, args: number): string {
  const params = Array.from({ length: args }, (_, i) => `$${i + 1}`);
  return `SELECT ${name}(${params.join(', ')})`;
}

/**
 * The command for a call of function `oid`, named `name` by the catalog (null: no function has
 * that OID, or `failure` says why it could not be looked up). What cannot be named is refused.
 */
export function judgeFunctionCall(
  session: Session,
  oid: number,
  args: number,
  name: string | null,
  failure?: string,
): Command {
  if (name === null) {
    const why = failure
      ? `its name could not be looked up in the target's catalog (${failure})`
      : "no function has this OID in the target's catalog";
    return session.refuse(
      `(FunctionCall of function OID ${oid})`,
      `FunctionCall of function OID ${oid} refused: ${why}`,
    );
  }
  const text = functionCallText(name, args);
  const c = session.decide(text);
  const mask = c.decision.action === 'allow' ? c.decision.masks[0] : undefined;
  if (!mask) return c;
  // Its value reaches the client in a FunctionCallResponse, with no column a mask could name.
  return session.refuse(
    text,
    `FunctionCall of ${name} refused: rule "${mask.rule}" masks this statement, and a value returned by a FunctionCall cannot be masked; call the function with SELECT`,
  );
}
