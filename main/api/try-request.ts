/**
 * The shape of a Try-it request as it arrives from a face (IPC or the socket): checked before the engine
 * starts anything, so a malformed one is a bad-input error that names the field. The rules live in the
 * API's one schema (validate.ts); this name stays for callers that import it from here.
 */
export { checkTryRequest as checkTryApiRequest } from './validate.ts';
