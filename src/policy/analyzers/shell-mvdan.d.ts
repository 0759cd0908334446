// Types for the parts of mvdan-sh (mvdan.cc/sh/v3/syntax compiled to JS) that the shell analyzer uses.
// Nodes keep the Go field names (Stmts, Cmd, Args, Parts, Value …); fields are read through guards.

declare module 'mvdan-sh' {
  export interface ShNode {
    readonly [field: string]: unknown;
  }
  export interface ShParser {
    /** Throws a ParseError-like object whose Error() method gives `name:line:col: message`. */
    Parse(src: string, name: string): ShNode;
  }
  export interface ShSyntax {
    NewParser(...options: unknown[]): ShParser;
    /** The visitor returns false to skip a node's children; it is called with null after the children. */
    Walk(node: ShNode, visit: (node: ShNode | null) => boolean): void;
    NodeType(node: ShNode): string;
  }
  const sh: { syntax: ShSyntax };
  export default sh;
}
