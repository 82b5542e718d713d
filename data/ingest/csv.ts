/**
 * Parses RFC 4180 CSV: quoted fields may hold commas, quotes ("") and newlines. Returns
 * each record with the 1-based line it starts on, for error messages.
 *
 * ```ts
 * parseCsv('path,label\n"a, b.jpg",cat\n'); // [{ line: 1, fields: ['path','label'] }, { line: 2, … }]
 * ```
 */
export function parseCsv(text: string): { line: number; fields: string[] }[] {
  const records: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let start = 1;
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const endRecord = () => {
    fields.push(field);
    if (fields.length > 1 || fields[0] !== '') records.push({ line: start, fields });
    fields = [];
    field = '';
    start = line;
  };
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (quoted) {
      if (c === '"' && body[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        if (c === '\n') line++;
        field += c;
      }
    } else if (c === '"' && field === '') {
      quoted = true;
    } else if (c === ',') {
      fields.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && body[i + 1] === '\n') i++;
      line++;
      endRecord();
    } else {
      field += c;
    }
  }
  if (quoted) throw new Error(`line ${start}: a quoted field is never closed`);
  if (field !== '' || fields.length > 0) endRecord();
  return records;
}
