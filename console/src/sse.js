// A parser for text/event-stream (the Server-Sent Events format) read from a fetch body:
// the browser's EventSource cannot send the x-api-key header, so the console parses the
// stream itself. Follows the WHATWG "event stream interpretation" rules.

/**
 * Returns `push(text)`, which takes the next decoded chunk of the stream (lines may be split
 * anywhere between chunks) and returns the events it completed: `{event, data, id}`, where
 * `id` is the last event id seen so far on the stream (the resume token), or null.
 */
export function createEventStreamParser() {
  let buffer = '';
  let skipLeadingNewline = false;
  let event = '';
  let data = [];
  let lastId = null;
  let sawId = false;

  function line(text, out) {
    if (text === '') {
      // A blank line dispatches the event gathered so far; without data there is none.
      if (data.length > 0) out.push({ event: event || 'message', data: data.join('\n'), id: lastId, hasId: sawId });
      event = '';
      data = [];
      sawId = false;
      return;
    }
    if (text.startsWith(':')) return; // a comment, such as ": keep-alive"
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id' && !value.includes('\0')) {
      lastId = value;
      sawId = true;
    }
    // `retry` and unknown fields are ignored: the console picks its own reconnection delay.
  }

  return function push(chunk) {
    const out = [];
    buffer += chunk;
    let start = 0;
    for (let i = 0; i < buffer.length; i += 1) {
      const c = buffer[i];
      if (c !== '\n' && c !== '\r') continue;
      if (c === '\n' && skipLeadingNewline && i === start) {
        // The \n of a \r\n pair whose \r ended the previous line.
        skipLeadingNewline = false;
        start = i + 1;
        continue;
      }
      line(buffer.slice(start, i), out);
      skipLeadingNewline = c === '\r';
      if (c === '\r' && buffer[i + 1] === '\n') {
        i += 1;
        skipLeadingNewline = false;
      }
      start = i + 1;
    }
    buffer = buffer.slice(start);
    if (buffer !== '') skipLeadingNewline = false;
    return out;
  };
}
