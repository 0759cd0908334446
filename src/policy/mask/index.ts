// Masking engine: detectors find secrets in text, styles rewrite them, the Masker applies column rules
// and detectors to rows and JSON, and the stream masker does the same for chunked terminal output.
export {
  ALL_DETECTORS,
  type DetectorName,
  detect,
  findBearerTokens,
  findCards,
  findCloudKeys,
  findEmails,
  findIbans,
  findIpv4,
  findIpv6,
  findJwts,
  findPemBlocks,
  findPhones,
  findSsns,
  ibanValid,
  isDetectorName,
  luhnValid,
  type Span,
} from './detectors.js';
export { type MaskRuleSpec, MaskSet, maskSpecOf } from './mask-set.js';
export {
  createStreamMasker,
  DEFAULT_HOLD_BACK,
  DEFAULT_PEM_LIMIT,
  type StreamMasker,
  type StreamMaskerOptions,
} from './stream.js';
export {
  keepLast,
  MaskSpecError,
  type MaskStyle,
  REDACTED,
  type Replacer,
  replacerFor,
  tokenize,
} from './styles.js';
export { type ColumnRef, createMasker, Masker, type MaskSpec, type RowPlan } from './values.js';
