/* global fetch, sessionStorage */
// Talks to the alerts API of the server that serves the console (same origin): every call
// carries the operator's key in x-api-key, and every failure becomes an ApiError whose
// message is the API's own `message`, or says that the network failed.

const KEY_STORAGE = 'alerts-console.api-key';

/** The key of this tab, if its operator logged in: sessionStorage only, gone with the tab. */
export const savedKey = () => sessionStorage.getItem(KEY_STORAGE);
export const saveKey = (key) => sessionStorage.setItem(KEY_STORAGE, key);
export const forgetKey = () => sessionStorage.removeItem(KEY_STORAGE);

export class ApiError extends Error {
  /**
   * @param {string} message what to show the operator
   * @param {{status?: number, errors?: {field: string, message: string}[], network?: boolean}} details
   */
  constructor(message, { status = 0, errors = [], network = false } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.errors = errors;
    this.network = network;
  }
}

export const NETWORK_MESSAGE = 'Network failure: the alerts service could not be reached. Check the connection and try again.';

/**
 * A client bound to one key. `onUnauthorized` hears of any 401 (a key revoked while the
 * console is open), so that the console can go back to its login page.
 */
export function createApi(key, { onUnauthorized } = {}) {
  async function request(method, path, body, { signal } = {}) {
    const headers = { 'x-api-key': key, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response;
    let text;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
      text = await response.text();
    } catch (error) {
      if (error && error.name === 'AbortError') throw error;
      throw new ApiError(NETWORK_MESSAGE, { network: true });
    }
    let data = null;
    if (text !== '') {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const message =
        data && typeof data.message === 'string' ? data.message : `The server answered ${response.status} ${response.statusText}`.trim();
      const error = new ApiError(message, { status: response.status, errors: Array.isArray(data?.errors) ? data.errors : [] });
      if (response.status === 401 && onUnauthorized) onUnauthorized(error);
      throw error;
    }
    return data;
  }

  return {
    key,
    get: (path, options) => request('GET', path, undefined, options),
    post: (path, body, options) => request('POST', path, body, options),
    patch: (path, body, options) => request('PATCH', path, body, options),
    del: (path, options) => request('DELETE', path, undefined, options),
  };
}

/** A path segment, escaped. */
export const seg = (value) => encodeURIComponent(String(value));
