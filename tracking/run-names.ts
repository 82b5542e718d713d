const ADJECTIVES = [
  'brave',
  'calm',
  'clever',
  'eager',
  'gentle',
  'keen',
  'lucky',
  'merry',
  'quick',
  'quiet',
  'sly',
  'wild',
];
const ANIMALS = [
  'badger',
  'crane',
  'fox',
  'gecko',
  'heron',
  'ibex',
  'lynx',
  'otter',
  'owl',
  'panda',
  'tiger',
  'wolf',
];

/** The name of a run started without one, like `brave-otter-42`. */
export function randomRunName(): string {
  const pick = (list: string[]) => list[Math.floor(Math.random() * list.length)]!;
  return `${pick(ADJECTIVES)}-${pick(ANIMALS)}-${Math.floor(Math.random() * 1000)}`;
}
