// ESM entry point: the implementation is index.cjs, so `import` and `require` share
// one copy of every class (`instanceof ByoursideError` holds across both).
import cjs from "./index.cjs";

export const {
  VERSION,
  DEFAULT_BASE_URL,
  SIGNATURE_HEADER,
  TERMINAL_STATUSES,
  TEMPORARY_MESSAGE,
  friendlyMessage,
  ByoursideError,
  clampLimit,
  Client,
  signWebhook,
  verifyWebhook,
} = cjs;

export default Client;
