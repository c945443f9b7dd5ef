// The one media-type parser of core (RFC 9110 §8.3.1). Every place that reads
// a media type — a query's `content_type`, a request or multipart part
// `Content-Type`, a stored type about to be served — goes through it, so they
// all agree on what a value means. Lenient parsing is how
// `image/png;,text/html` got stored as "an image" and then rendered as HTML:
// browsers and fetch implementations read a comma-separated Content-Type as
// a list and take the last member.
//
//   media-type = type "/" subtype parameters
//   parameters = *( OWS ";" OWS [ parameter ] )
//   parameter  = parameter-name "=" ( token / quoted-string )
//
// Only ASCII is accepted (obs-text is not): the value is sent back in a
// header, where anything else is unsafe.

/** A parsed media type; `type`, `subtype` and parameter names are lowercase. */
export interface MediaType {
  type: string;
  subtype: string;
  /** `type/subtype`, what decisions (inline display, JSON, multipart) look at. */
  essence: string;
  /** In the order given, names lowercase, values unquoted. */
  parameters: ReadonlyMap<string, string>;
}

/** Longest media type accepted, as given and as stored. */
export const MAX_MEDIA_TYPE_LENGTH = 255;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const TOKEN_CHARS = "[!#$%&'*+.^_`|~0-9A-Za-z-]";
const OWS = '[ \\t]*';
// One parameter after its `;`: name=token or name="quoted", or nothing at all.
const PARAMETER = new RegExp(
  `^${OWS}(?:(${TOKEN_CHARS}+)=(?:(${TOKEN_CHARS}+)|"((?:[\\t\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\t\\x20-\\x7e])*)"))?${OWS}`,
);

/**
 * Parses `value` strictly; anything that is not exactly one media type with
 * well-formed parameters (a comma, a stray character, a repeated parameter,
 * non-ASCII, more than 255 characters) is `undefined`.
 */
export function parseMediaType(value: string): MediaType | undefined {
  if (value.length > MAX_MEDIA_TYPE_LENGTH) return undefined;
  const head = /^[ \t]*([^/;\s]+)\/([^;\s]+)[ \t]*/.exec(value);
  if (!head || !TOKEN.test(head[1]!) || !TOKEN.test(head[2]!)) return undefined;
  const type = head[1]!.toLowerCase();
  const subtype = head[2]!.toLowerCase();
  const parameters = new Map<string, string>();
  let rest = value.slice(head[0].length);
  while (rest !== '') {
    if (rest[0] !== ';') return undefined;
    const match = PARAMETER.exec(rest.slice(1));
    if (!match) return undefined;
    rest = rest.slice(1 + match[0].length);
    const name = match[1]?.toLowerCase();
    if (name === undefined) continue; // an empty parameter (`a/b;;c=d`) is allowed and dropped
    // The same parameter twice is ambiguous: readers differ on which one wins.
    if (parameters.has(name)) return undefined;
    parameters.set(name, match[2] ?? match[3]!.replace(/\\(.)/g, '$1'));
  }
  return { type, subtype, essence: `${type}/${subtype}`, parameters };
}

/** The canonical text of a media type: `type/subtype; name=value`, values quoted only when they must be. */
export function formatMediaType(mediaType: MediaType): string {
  let text = mediaType.essence;
  for (const [name, value] of mediaType.parameters) {
    text += `; ${name}=${TOKEN.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`}`;
  }
  return text;
}

/** `value` in canonical form, or `undefined` when it is not a valid media type (or its canonical form is too long). */
export function normalizeMediaType(value: string): string | undefined {
  const parsed = parseMediaType(value);
  if (parsed === undefined) return undefined;
  const text = formatMediaType(parsed);
  return text.length <= MAX_MEDIA_TYPE_LENGTH ? text : undefined;
}
