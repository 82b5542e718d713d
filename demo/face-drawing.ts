import sharp from 'sharp';
import type { Rng } from '../core/random.js';

export type DemoLabel = 'cat' | 'dog' | 'wild';

/** The demo classes, in the order AFHQ lists them. */
export const DEMO_LABELS: readonly DemoLabel[] = ['cat', 'dog', 'wild'];

export interface RenderFaceOptions {
  /** Width and height of the square image in pixels; 512 unless given. */
  size?: number;
  /** JPEG quality, 1–100; 90 unless given. */
  quality?: number;
}

/**
 * Draws one random animal face of class `label` over a cluttered background and returns
 * JPEG bytes. Every random choice comes from `rng`, so the same stream gives the same bytes.
 * Classes share colours, poses and some features on purpose, so telling them apart takes
 * a model a few epochs rather than one.
 *
 * ```ts
 * import fs from 'node:fs/promises';
 * import { createRng } from '../core/random.js';
 * import { renderFace } from './face-drawing.js';
 *
 * const jpeg = await renderFace('cat', createRng(42).fork('cat').fork('1'));
 * await fs.writeFile('cat.jpg', jpeg); // 512×512
 * ```
 */
export async function renderFace(
  label: DemoLabel,
  rng: Rng,
  options: RenderFaceOptions = {},
): Promise<Buffer> {
  const size = options.size ?? 512;
  const svg = sceneSvg(label, rng.fork('scene'), size);
  const { data, info } = await sharp(Buffer.from(svg))
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const noise = rng.fork('noise');
  addNoise(data, noise, noise.float(3, 16));
  return sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } })
    .jpeg({ quality: options.quality ?? 90 })
    .toBuffer();
}

/** Sensor-like grain: a triangular-distributed offset per channel, sd ≈ 0.41 × `amplitude`. */
function addNoise(pixels: Buffer, rng: Rng, amplitude: number): void {
  for (let i = 0; i < pixels.length; i++) {
    const value = (pixels[i] as number) + (rng.next() - rng.next()) * amplitude;
    pixels[i] = value < 0 ? 0 : value > 255 ? 255 : value;
  }
}

// ---- Scene: background, clutter, the posed face, occluders ------------------------------

const CANVAS = 512;

function sceneSvg(label: DemoLabel, rng: Rng, size: number): string {
  const face = label === 'cat' ? drawCat(rng) : label === 'dog' ? drawDog(rng) : drawWild(rng);
  const scale = rng.float(0.95, 1.45);
  const cx = CANVAS / 2 + clamp(rng.normal(0, 25), -60, 60);
  const cy = CANVAS / 2 + 12 + clamp(rng.normal(0, 22), -50, 50);
  const angle = clamp(rng.normal(0, 11), -28, 28);
  const flip = rng.next() < 0.5 ? -1 : 1;
  const tint = rng.next() < 0.5 ? '#000' : '#fff';
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 ${CANVAS} ${CANVAS}">`,
    `<defs>${background(rng)}<clipPath id="head"><path d="${face.head}"/></clipPath></defs>`,
    `<rect width="${CANVAS}" height="${CANVAS}" fill="url(#bg)"/>`,
    clutter(rng, rng.int(2, 6)),
    `<g transform="translate(${n(cx)} ${n(cy)}) rotate(${n(angle)}) scale(${n(scale * flip)} ${n(scale)})">`,
    face.behind.join(''),
    `<path d="${face.head}" fill="${hex(face.fur)}" stroke="${hex(tone(face.fur, -18))}" stroke-width="3"/>`,
    `<g clip-path="url(#head)">${face.marks.join('')}</g>`,
    face.front.join(''),
    '</g>',
    rng.next() < 0.2 ? occluder(rng, cx, cy, scale) : '',
    `<rect width="${CANVAS}" height="${CANVAS}" fill="${tint}" opacity="${n(rng.float(0, 0.22))}"/>`,
    '</svg>',
  ].join('');
}

function background(rng: Rng): string {
  const a = randomColour(rng);
  const b = rng.next() < 0.3 ? tone(a, rng.float(-30, 30)) : randomColour(rng);
  const stops = `<stop offset="0" stop-color="${hex(a)}"/><stop offset="1" stop-color="${hex(b)}"/>`;
  if (rng.next() < 0.3) {
    const at = `cx="${n(rng.float(0.2, 0.8))}" cy="${n(rng.float(0.2, 0.8))}"`;
    return `<radialGradient id="bg" ${at} r="${n(rng.float(0.5, 1))}">${stops}</radialGradient>`;
  }
  const t = rng.float(0, Math.PI * 2);
  const [x, y] = [Math.cos(t) / 2, Math.sin(t) / 2];
  const ends = `x1="${n(0.5 - x)}" y1="${n(0.5 - y)}" x2="${n(0.5 + x)}" y2="${n(0.5 + y)}"`;
  return `<linearGradient id="bg" ${ends}>${stops}</linearGradient>`;
}

/** Distractor shapes behind the face, some of them ear-like triangles or stripes. */
function clutter(rng: Rng, count: number): string {
  const shapes: string[] = [];
  for (let i = 0; i < count; i++) {
    const x = rng.float(0, CANVAS);
    const y = rng.float(0, CANVAS);
    const r = rng.float(15, 90);
    const paint = `fill="${hex(randomColour(rng))}" opacity="${n(rng.float(0.25, 0.85))}"`;
    const kind = rng.int(0, 4);
    if (kind === 0) shapes.push(`<circle cx="${n(x)}" cy="${n(y)}" r="${n(r)}" ${paint}/>`);
    else if (kind === 1) {
      const rot = `transform="rotate(${n(rng.float(0, 90))} ${n(x)} ${n(y)})"`;
      shapes.push(
        `<rect x="${n(x - r)}" y="${n(y - r / 2)}" width="${n(2 * r)}" height="${n(r)}" ${rot} ${paint}/>`,
      );
    } else if (kind === 2) {
      const t = rng.float(0, 360);
      const pts = [0, 120, 240].map((d) => polar(r, t + d + rng.float(-25, 25), x, y));
      shapes.push(`<polygon points="${points(pts)}" ${paint}/>`);
    } else if (kind === 3) {
      const [x2, y2] = polar(r * 3, rng.float(0, 360), x, y);
      const stroke = `stroke="${hex(randomColour(rng))}" stroke-width="${n(rng.float(3, 14))}"`;
      shapes.push(
        `<line x1="${n(x)}" y1="${n(y)}" x2="${n(x2)}" y2="${n(y2)}" ${stroke} stroke-linecap="round"/>`,
      );
    } else {
      const rot = `transform="rotate(${n(rng.float(0, 180))} ${n(x)} ${n(y)})"`;
      shapes.push(
        `<ellipse cx="${n(x)}" cy="${n(y)}" rx="${n(r)}" ry="${n(r * rng.float(0.3, 0.7))}" ${rot} ${paint}/>`,
      );
    }
  }
  return shapes.join('');
}

/** Something in front of the face (a leaf, a post, a ball) hiding part of it. */
function occluder(rng: Rng, cx: number, cy: number, scale: number): string {
  const [x, y] = polar(rng.float(70, 130) * scale, rng.float(0, 360), cx, cy);
  const r = rng.float(30, 60) * scale;
  const paint = `fill="${hex(randomColour(rng))}"`;
  const rot = `transform="rotate(${n(rng.float(0, 180))} ${n(x)} ${n(y)})"`;
  return rng.next() < 0.5
    ? `<ellipse cx="${n(x)}" cy="${n(y)}" rx="${n(r)}" ry="${n(r * rng.float(0.4, 0.9))}" ${rot} ${paint}/>`
    : `<rect x="${n(x - r)}" y="${n(y - r * 2)}" width="${n(r * rng.float(0.5, 1.2))}" height="${n(r * 4)}" ${rot} ${paint}/>`;
}

// ---- Faces ------------------------------------------------------------------------------
// Drawn in a local frame: head centred on (0, 0), about 200 units across, nose pointing
// down. `behind` is drawn before the head, `marks` clipped to it, `front` over it.

interface Face {
  fur: Hsl;
  head: string;
  behind: string[];
  marks: string[];
  front: string[];
}

type Coat = { fur: Hsl; light: Hsl; dark: Hsl };

function drawCat(rng: Rng): Face {
  const kind = rng.pick(['grey', 'orange', 'black', 'white', 'tabby', 'cream', 'pointed'] as const);
  const fur =
    kind === 'grey'
      ? hsl(rng.float(190, 230), rng.float(4, 14), rng.float(42, 66))
      : kind === 'orange'
        ? hsl(rng.float(22, 34), rng.float(60, 85), rng.float(48, 62))
        : kind === 'black'
          ? hsl(rng.float(0, 360), 4, rng.float(10, 18))
          : kind === 'white'
            ? hsl(rng.float(30, 45), rng.float(10, 25), rng.float(86, 94))
            : kind === 'tabby'
              ? hsl(rng.float(24, 36), rng.float(25, 45), rng.float(34, 50))
              : hsl(rng.float(32, 42), rng.float(35, 60), rng.float(70, 82));
  const coat = coatOf(fur);
  const rx = rng.float(92, 106);
  const ry = rng.float(80, 94);
  const face = emptyFace(fur, ellipsePath(rx, ry));
  const earColour = kind === 'pointed' ? hsl(25, 35, 22) : fur;

  const earAngle = rng.float(36, 52);
  const earLength = rng.float(60, 100);
  const earHalf = rng.float(15, 22);
  for (const side of [-1, 1]) {
    const angle = -90 + side * (earAngle + rng.float(-4, 4));
    face.behind.push(pointedEar(rx, ry, angle, earHalf, earLength, 0, earColour, pinkInner(rng)));
  }
  if (kind === 'tabby' || (kind !== 'black' && kind !== 'white' && rng.next() < 0.3)) {
    face.marks.push(...foreheadStripes(rng, ry, tone(fur, -25), rng.float(5, 9)));
    face.marks.push(...cheekStripes(rng, rx, tone(fur, -25), rng.float(4, 8), 2));
  }
  if (kind === 'pointed') face.marks.push(ellipse(0, 25, rx * 0.55, ry * 0.65, hsl(25, 35, 22)));
  if (rng.next() < 0.35)
    face.marks.push(ellipse(0, ry * 0.7, rx * 0.5, ry * 0.45, hsl(40, 15, 93)));
  const padY = rng.float(36, 44);
  for (const side of [-1, 1]) face.front.push(ellipse(side * 15, padY, 18, 13, coat.light));

  const eyeX = rng.float(34, 46);
  const eyeY = rng.float(-18, -4);
  const iris = rng.pick([hsl(95, 60, 45), hsl(50, 85, 55), hsl(200, 65, 60), hsl(35, 80, 50)]);
  const slit = rng.next() < 0.75;
  for (const side of [-1, 1]) {
    face.front.push(
      almondEye(side * eyeX, eyeY, side, rng.float(15, 21), rng.float(10, 15), iris, slit),
    );
  }
  const noseColour = kind === 'black' || kind === 'pointed' ? hsl(0, 10, 15) : hsl(350, 60, 72);
  face.front.push(catNose(0, padY - 16, rng.float(8, 12), noseColour));
  face.front.push(mouth(0, padY - 5, rng.float(10, 16), tone(fur, -40)));
  face.front.push(whiskers(rng, padY, rng.float(85, 130), 3, kind === 'white' ? '#777' : '#eee'));
  return face;
}

function drawDog(rng: Rng): Face {
  const kind = rng.pick(['golden', 'brown', 'black', 'white', 'tan', 'grey', 'cream'] as const);
  const fur =
    kind === 'golden'
      ? hsl(rng.float(34, 44), rng.float(55, 80), rng.float(50, 64))
      : kind === 'brown'
        ? hsl(rng.float(18, 30), rng.float(35, 60), rng.float(24, 40))
        : kind === 'black'
          ? hsl(rng.float(0, 360), 4, rng.float(10, 18))
          : kind === 'white'
            ? hsl(rng.float(30, 45), rng.float(10, 25), rng.float(86, 94))
            : kind === 'tan'
              ? hsl(rng.float(26, 36), rng.float(35, 55), rng.float(55, 70))
              : kind === 'grey'
                ? hsl(rng.float(190, 230), rng.float(4, 14), rng.float(48, 66))
                : hsl(rng.float(32, 42), rng.float(35, 60), rng.float(70, 82));
  const coat = coatOf(fur);
  const rx = rng.float(80, 96);
  const ry = rng.float(88, 104);
  const face = emptyFace(fur, ellipsePath(rx, ry));
  const earColour = rng.next() < 0.5 ? coat.dark : rng.next() < 0.5 ? fur : randomCoat(rng);

  // Most dogs hang their ears; a few (huskies, shepherds) hold them up like a cat's.
  if (rng.next() < 0.8) {
    const length = rng.float(80, 130);
    const width = rng.float(28, 42);
    const tilt = rng.float(5, 30);
    for (const side of [-1, 1]) {
      face.front.push(
        floppyEar(side, rx * rng.float(0.72, 0.9), -ry * 0.55, width, length, tilt, earColour),
      );
    }
  } else {
    const earAngle = rng.float(32, 48);
    for (const side of [-1, 1]) {
      face.behind.push(
        pointedEar(
          rx,
          ry,
          -90 + side * earAngle,
          rng.float(20, 27),
          rng.float(55, 80),
          0.5,
          earColour,
          tone(earColour, 15),
        ),
      );
    }
  }
  if (rng.next() < 0.3)
    face.marks.push(
      ellipse(rng.pick([-1, 1]) * 38, -12, rng.float(28, 40), rng.float(26, 36), coat.dark),
    );
  if (rng.next() < 0.25)
    face.marks.push(
      `<path d="M -10 ${-ry} L 10 ${-ry} L 22 10 L -22 10 Z" fill="${hex(hsl(40, 15, 93))}"/>`,
    );

  const muzzleY = rng.float(40, 55);
  const muzzleRx = rng.float(44, 58);
  const muzzleRy = rng.float(34, 46);
  const muzzleColour = rng.next() < 0.4 ? hsl(40, 15, 92) : coat.light;
  face.front.push(ellipse(0, muzzleY, muzzleRx, muzzleRy, muzzleColour, tone(fur, -15)));
  if (rng.next() < 0.4) {
    face.front.push(
      ellipse(
        rng.float(-6, 6),
        muzzleY + muzzleRy * 0.75,
        rng.float(12, 18),
        rng.float(14, 24),
        hsl(350, 70, 65),
      ),
    );
  }
  const eyeX = rng.float(30, 42);
  const eyeY = rng.float(-22, -6);
  const iris = rng.pick([hsl(25, 60, 22), hsl(30, 50, 35), hsl(200, 50, 65)]);
  for (const side of [-1, 1])
    face.front.push(roundEye(side * eyeX, eyeY, rng.float(9, 14), iris, 0.7));
  if (rng.next() < 0.25) {
    for (const side of [-1, 1])
      face.front.push(ellipse(side * eyeX, eyeY - 20, 8, 5, hsl(32, 60, 55)));
  }
  const noseY = muzzleY - muzzleRy * 0.45;
  face.front.push(dogNose(0, noseY, rng.float(16, 24), rng.float(11, 16)));
  face.front.push(mouth(0, noseY + 12, rng.float(16, 26), hsl(0, 0, 12)));
  if (rng.next() < 0.15)
    face.front.push(whiskers(rng, noseY + 10, rng.float(35, 55), 2, hex(tone(fur, -30))));
  return face;
}

function drawWild(rng: Rng): Face {
  const species = rng.pick(['lion', 'tiger', 'fox', 'wolf', 'leopard'] as const);
  if (species === 'lion') return drawLion(rng);
  if (species === 'tiger') return drawTiger(rng);
  if (species === 'fox') return drawFox(rng);
  if (species === 'wolf') return drawWolf(rng);
  return drawLeopard(rng);
}

function drawLion(rng: Rng): Face {
  const fur = hsl(rng.float(32, 42), rng.float(45, 65), rng.float(50, 64));
  const coat = coatOf(fur);
  const rx = rng.float(84, 96);
  const ry = rng.float(92, 104);
  const face = emptyFace(fur, ellipsePath(rx, ry));
  const mane = hsl(rng.float(18, 34), rng.float(45, 70), rng.float(22, 42));
  const outer = rng.float(140, 175);
  face.behind.push(shaggyRing(rng, outer, outer * 0.78, rng.int(18, 30), mane));
  face.behind.push(shaggyRing(rng, rx * 1.25, rx * 1.05, rng.int(14, 22), tone(mane, 10)));
  for (const side of [-1, 1])
    face.behind.push(roundEar(rx, ry, -90 + side * 48, rng.float(20, 28), fur, coat.dark));
  bigCatMuzzle(rng, face, coat, rng.float(36, 44), hsl(15, 35, 45));
  const iris = hsl(rng.float(35, 45), 75, 45);
  for (const side of [-1, 1])
    face.front.push(roundEye(side * rng.float(32, 40), -22, rng.float(9, 12), iris, 0.45));
  return face;
}

function drawTiger(rng: Rng): Face {
  const fur = hsl(rng.float(20, 30), rng.float(70, 90), rng.float(46, 56));
  const coat = coatOf(fur);
  const rx = rng.float(104, 116);
  const ry = rng.float(88, 98);
  const face = emptyFace(fur, ellipsePath(rx, ry));
  const white = hsl(40, 20, 94);
  for (const side of [-1, 1]) {
    face.behind.push(ellipse(side * rx * 0.8, ry * 0.35, rx * 0.4, ry * 0.42, white, '#444'));
    face.behind.push(roundEar(rx, ry, -90 + side * 45, rng.float(20, 27), hsl(0, 0, 12), white));
  }
  face.marks.push(...foreheadStripes(rng, ry, hsl(0, 0, 8), rng.float(10, 16)));
  face.marks.push(...cheekStripes(rng, rx, hsl(0, 0, 8), rng.float(9, 14), 3));
  for (const side of [-1, 1]) face.marks.push(ellipse(side * 36, -42, 18, 10, white));
  bigCatMuzzle(rng, face, { ...coat, light: white }, rng.float(34, 42), hsl(350, 45, 65));
  const iris = hsl(rng.float(38, 50), 80, 50);
  for (const side of [-1, 1])
    face.front.push(roundEye(side * rng.float(34, 42), -20, rng.float(9, 12), iris, 0.45));
  face.front.push(whiskers(rng, 44, rng.float(70, 110), 3, '#f4f4f4'));
  return face;
}

function drawFox(rng: Rng): Face {
  const fur = hsl(rng.float(14, 26), rng.float(70, 90), rng.float(44, 56));
  const rx = rng.float(94, 106);
  const ry = rng.float(100, 115);
  const face = emptyFace(fur, taperedHeadPath(rx, ry, 0.22));
  const white = hsl(40, 15, 94);
  const earLength = rng.float(90, 130);
  for (const side of [-1, 1]) {
    face.behind.push(
      pointedEar(
        rx,
        ry * 0.8,
        -90 + side * 42,
        rng.float(17, 23),
        earLength,
        0,
        fur,
        white,
        hsl(0, 0, 10),
      ),
    );
  }
  for (const side of [-1, 1])
    face.marks.push(ellipse(side * rx * 0.55, ry * 0.45, rx * 0.5, ry * 0.45, white));
  const iris = hsl(rng.float(35, 45), 85, 50);
  for (const side of [-1, 1])
    face.front.push(
      almondEye(
        side * rng.float(34, 42),
        -18,
        side,
        rng.float(14, 18),
        rng.float(8, 11),
        iris,
        true,
      ),
    );
  face.front.push(dogNose(0, ry * 0.82, rng.float(9, 13), rng.float(7, 9)));
  return face;
}

function drawWolf(rng: Rng): Face {
  const fur = hsl(rng.float(25, 40), rng.float(5, 18), rng.float(40, 62));
  const coat = coatOf(fur);
  const rx = rng.float(96, 108);
  const ry = rng.float(100, 112);
  const face = emptyFace(fur, taperedHeadPath(rx, ry, 0.38));
  for (const side of [-1, 1]) {
    face.behind.push(
      pointedEar(
        rx,
        ry * 0.85,
        -90 + side * 40,
        rng.float(18, 25),
        rng.float(60, 85),
        0.2,
        coat.dark,
        coat.light,
      ),
    );
  }
  face.marks.push(
    `<path d="M ${-rx} 10 Q -40 -50 0 -20 Q 40 -50 ${rx} 10 L 30 ${ry} L -30 ${ry} Z" fill="${hex(coat.light)}"/>`,
  );
  face.marks.push(
    `<path d="M -18 ${-ry} L 18 ${-ry} L 8 -20 L -8 -20 Z" fill="${hex(coat.dark)}"/>`,
  );
  const iris = hsl(rng.float(42, 52), 85, 55);
  for (const side of [-1, 1])
    face.front.push(
      almondEye(
        side * rng.float(32, 40),
        -24,
        side,
        rng.float(13, 17),
        rng.float(8, 11),
        iris,
        false,
      ),
    );
  face.front.push(dogNose(0, ry * 0.68, rng.float(14, 19), rng.float(10, 13)));
  face.front.push(mouth(0, ry * 0.68 + 12, rng.float(14, 20), hsl(0, 0, 12)));
  return face;
}

function drawLeopard(rng: Rng): Face {
  const fur = hsl(rng.float(36, 46), rng.float(55, 72), rng.float(55, 68));
  const coat = coatOf(fur);
  const rx = rng.float(92, 104);
  const ry = rng.float(86, 98);
  const face = emptyFace(fur, ellipsePath(rx, ry));
  for (const side of [-1, 1])
    face.behind.push(roundEar(rx, ry, -90 + side * 50, rng.float(17, 23), fur, hsl(0, 0, 15)));
  const spots = rng.int(18, 34);
  for (let i = 0; i < spots; i++) {
    const [x, y] = [rng.float(-rx, rx), rng.float(-ry, ry * 0.2)];
    if (Math.abs(x) < 55 && y > -35) continue; // keep the eyes and muzzle clear
    face.marks.push(ellipse(x, y, rng.float(4, 9), rng.float(4, 8), hsl(0, 0, 10)));
  }
  if (rng.next() < 0.5) {
    // Cheetah tear lines, from the inner eye to the mouth corners.
    for (const side of [-1, 1]) {
      face.front.push(
        `<path d="M ${side * 22} -14 Q ${side * 34} 20 ${side * 26} 52" stroke="#111" stroke-width="6" fill="none" stroke-linecap="round"/>`,
      );
    }
  }
  bigCatMuzzle(rng, face, { ...coat, light: hsl(40, 20, 92) }, rng.float(36, 42), hsl(350, 30, 40));
  const iris = hsl(rng.float(38, 50), 80, 50);
  for (const side of [-1, 1])
    face.front.push(roundEye(side * rng.float(32, 40), -18, rng.float(9, 12), iris, 0.45));
  return face;
}

/** Whisker pads, a wide nose and a mouth: the shared lower face of lions, tigers, leopards. */
function bigCatMuzzle(rng: Rng, face: Face, coat: Coat, padY: number, nose: Hsl): void {
  for (const side of [-1, 1]) face.front.push(ellipse(side * 20, padY, 24, 18, coat.light));
  face.front.push(ellipse(0, padY + 22, 20, 12, coat.light));
  face.front.push(catNose(0, padY - 22, rng.float(14, 19), nose));
  face.front.push(mouth(0, padY - 6, rng.float(14, 20), hsl(0, 0, 15)));
}

// ---- Parts ------------------------------------------------------------------------------

function emptyFace(fur: Hsl, head: string): Face {
  return { fur, head, behind: [], marks: [], front: [] };
}

/**
 * A triangular ear rising from the head outline at `angle` degrees (−90 is straight up).
 * `round` (0–1) softens the tip; `tip` paints the top third, as on a fox.
 */
function pointedEar(
  rx: number,
  ry: number,
  angle: number,
  halfWidth: number,
  length: number,
  round: number,
  fill: Hsl,
  inner: Hsl,
  tip?: Hsl,
): string {
  const onHead = (deg: number): Point => {
    const t = (deg * Math.PI) / 180;
    return [rx * 0.92 * Math.cos(t), ry * 0.92 * Math.sin(t)];
  };
  const b1 = onHead(angle - halfWidth);
  const b2 = onHead(angle + halfWidth);
  const mid = lerp(b1, b2, 0.5);
  const apex = polar(length + 15, angle, mid[0], mid[1]);
  const outline = (a: Point, b: Point, top: Point): string => {
    const p1 = lerp(a, top, 1 - round * 0.35);
    const p2 = lerp(b, top, 1 - round * 0.35);
    return `M ${pt(a)} L ${pt(p1)} Q ${pt(top)} ${pt(p2)} L ${pt(b)} Z`;
  };
  const parts = [
    `<path d="${outline(b1, b2, apex)}" fill="${hex(fill)}" stroke="${hex(tone(fill, -20))}" stroke-width="3"/>`,
  ];
  if (tip) {
    parts.push(
      `<path d="${outline(lerp(b1, apex, 0.62), lerp(b2, apex, 0.62), apex)}" fill="${hex(tip)}"/>`,
    );
  }
  const innerTop = lerp(mid, apex, 0.72);
  parts.push(
    `<path d="${outline(lerp(b1, b2, 0.22), lerp(b1, b2, 0.78), innerTop)}" fill="${hex(inner)}"/>`,
  );
  return parts.join('');
}

function roundEar(rx: number, ry: number, angle: number, r: number, fill: Hsl, inner: Hsl): string {
  const t = (angle * Math.PI) / 180;
  const [x, y] = [rx * 0.88 * Math.cos(t), ry * 0.88 * Math.sin(t)];
  return circle(x, y, r, fill, tone(fill, -20)) + circle(x, y, r * 0.55, inner);
}

/** A long teardrop hanging from the top of the head down past the cheek. */
function floppyEar(
  side: number,
  x: number,
  y: number,
  width: number,
  length: number,
  tilt: number,
  fill: Hsl,
): string {
  const d = `M 0 0 C ${n(-width * 1.3)} ${n(length * 0.2)} ${n(-width * 1.2)} ${n(length)} 0 ${n(length)} C ${n(width * 1.2)} ${n(length)} ${n(width * 1.1)} ${n(length * 0.2)} 0 0 Z`;
  const at = `translate(${n(side * x)} ${n(y)}) rotate(${n(-side * tilt)})`;
  return `<path d="${d}" transform="${at}" fill="${hex(fill)}" stroke="${hex(tone(fill, -20))}" stroke-width="3"/>`;
}

function almondEye(
  x: number,
  y: number,
  side: number,
  w: number,
  h: number,
  iris: Hsl,
  slit: boolean,
): string {
  const d = `M ${n(-w)} 0 Q 0 ${n(-h * 1.6)} ${n(w)} 0 Q 0 ${n(h * 1.6)} ${n(-w)} 0 Z`;
  const pupil = slit
    ? ellipse(0, 0, w * 0.16, h * 0.9, hsl(0, 0, 5))
    : circle(0, 0, h * 0.75, hsl(0, 0, 5));
  const at = `translate(${n(x)} ${n(y)}) rotate(${n(side * -14)})`;
  return `<g transform="${at}"><path d="${d}" fill="${hex(iris)}" stroke="#111" stroke-width="3"/>${pupil}${circle(w * 0.3, -h * 0.35, 2.5, hsl(0, 0, 100))}</g>`;
}

function roundEye(x: number, y: number, r: number, iris: Hsl, pupil: number): string {
  return (
    circle(x, y, r, iris, '#111') +
    circle(x, y, r * pupil, hsl(0, 0, 4)) +
    circle(x + r * 0.3, y - r * 0.35, r * 0.22, hsl(0, 0, 100))
  );
}

function catNose(x: number, y: number, w: number, fill: Hsl): string {
  const d = `M ${n(x - w)} ${n(y)} L ${n(x + w)} ${n(y)} Q ${n(x + w * 0.3)} ${n(y + w)} ${n(x)} ${n(y + w * 1.1)} Q ${n(x - w * 0.3)} ${n(y + w)} ${n(x - w)} ${n(y)} Z`;
  return `<path d="${d}" fill="${hex(fill)}" stroke="${hex(tone(fill, -25))}" stroke-width="1.5"/>`;
}

function dogNose(x: number, y: number, w: number, h: number): string {
  const d = `M ${n(x - w)} ${n(y - h * 0.4)} Q ${n(x)} ${n(y - h * 1.1)} ${n(x + w)} ${n(y - h * 0.4)} Q ${n(x + w * 1.05)} ${n(y + h * 0.6)} ${n(x)} ${n(y + h)} Q ${n(x - w * 1.05)} ${n(y + h * 0.6)} ${n(x - w)} ${n(y - h * 0.4)} Z`;
  return (
    `<path d="${d}" fill="#151515"/>` +
    ellipse(x - w * 0.3, y - h * 0.35, w * 0.25, h * 0.18, hsl(0, 0, 55))
  );
}

function mouth(x: number, y: number, w: number, colour: Hsl): string {
  const d = `M ${n(x)} ${n(y - 6)} L ${n(x)} ${n(y)} M ${n(x - w)} ${n(y + 2)} Q ${n(x - w / 2)} ${n(y + 9)} ${n(x)} ${n(y)} Q ${n(x + w / 2)} ${n(y + 9)} ${n(x + w)} ${n(y + 2)}`;
  return `<path d="${d}" stroke="${hex(colour)}" stroke-width="3" fill="none" stroke-linecap="round"/>`;
}

function whiskers(rng: Rng, y: number, length: number, perSide: number, colour: string): string {
  const lines: string[] = [];
  for (const side of [-1, 1]) {
    for (let i = 0; i < perSide; i++) {
      const start: Point = [side * 24, y + i * 5 - 4];
      const [ex, ey] = polar(
        length,
        (side < 0 ? 180 : 0) + side * (i - 1) * rng.float(8, 14),
        start[0],
        start[1],
      );
      lines.push(
        `<path d="M ${pt(start)} Q ${n((start[0] + ex) / 2)} ${n((start[1] + ey) / 2 - 6)} ${n(ex)} ${n(ey)}" stroke="${colour}" stroke-width="2" fill="none"/>`,
      );
    }
  }
  return lines.join('');
}

function foreheadStripes(rng: Rng, ry: number, colour: Hsl, width: number): string[] {
  return [-1, 0, 1].map((i) => {
    const x = i * rng.float(16, 24);
    return taperedStripe(
      [x, -ry - 5],
      [x * 1.2 + rng.float(-4, 4), -ry + rng.float(40, 58)],
      width,
      colour,
    );
  });
}

function cheekStripes(rng: Rng, rx: number, colour: Hsl, width: number, perSide: number): string[] {
  const stripes: string[] = [];
  for (const side of [-1, 1]) {
    for (let i = 0; i < perSide; i++) {
      const y = 5 + i * rng.float(16, 22);
      stripes.push(
        taperedStripe(
          [side * (rx + 5), y],
          [side * (rx - rng.float(35, 55)), y - 8 + rng.float(-5, 5)],
          width,
          colour,
        ),
      );
    }
  }
  return stripes;
}

function taperedStripe(from: Point, to: Point, width: number, colour: Hsl): string {
  const [dx, dy] = [to[0] - from[0], to[1] - from[1]];
  const len = Math.hypot(dx, dy) || 1;
  const [nx, ny] = [(-dy / len) * (width / 2), (dx / len) * (width / 2)];
  const d = `M ${n(from[0] + nx)} ${n(from[1] + ny)} Q ${n(to[0] + nx)} ${n(to[1] + ny)} ${pt(to)} Q ${n(to[0] - nx)} ${n(to[1] - ny)} ${n(from[0] - nx)} ${n(from[1] - ny)} Z`;
  return `<path d="${d}" fill="${hex(colour)}"/>`;
}

function shaggyRing(rng: Rng, outer: number, inner: number, spikes: number, fill: Hsl): string {
  const pts: string[] = [];
  const step = 360 / spikes;
  for (let i = 0; i < spikes; i++) {
    const tipAt = polar(outer * rng.float(0.88, 1.08), i * step);
    const valley = polar(inner, (i + 0.5) * step);
    pts.push(
      `${i === 0 ? 'M' : 'L'} ${pt(tipAt)} Q ${pt(polar(inner * 1.05, (i + 0.3) * step))} ${pt(valley)}`,
    );
  }
  return `<path d="${pts.join(' ')} Z" fill="${hex(fill)}" stroke="${hex(tone(fill, -15))}" stroke-width="2"/>`;
}

function ellipsePath(rx: number, ry: number): string {
  return `M ${n(-rx)} 0 A ${n(rx)} ${n(ry)} 0 1 0 ${n(rx)} 0 A ${n(rx)} ${n(ry)} 0 1 0 ${n(-rx)} 0 Z`;
}

/** A head wide at the brow and narrowing to a muzzle; `chin` is the muzzle's half-width. */
function taperedHeadPath(rx: number, ry: number, chin: number): string {
  const c = rx * chin;
  return `M ${n(-rx)} ${n(-ry * 0.15)} C ${n(-rx)} ${n(-ry * 1.15)} ${n(rx)} ${n(-ry * 1.15)} ${n(rx)} ${n(-ry * 0.15)} C ${n(rx * 0.9)} ${n(ry * 0.4)} ${n(c)} ${n(ry * 0.75)} 0 ${n(ry)} C ${n(-c)} ${n(ry * 0.75)} ${n(-rx * 0.9)} ${n(ry * 0.4)} ${n(-rx)} ${n(-ry * 0.15)} Z`;
}

function ellipse(
  x: number,
  y: number,
  rx: number,
  ry: number,
  fill: Hsl,
  stroke?: Hsl | string,
): string {
  const edge =
    stroke === undefined
      ? ''
      : ` stroke="${typeof stroke === 'string' ? stroke : hex(stroke)}" stroke-width="2"`;
  return `<ellipse cx="${n(x)}" cy="${n(y)}" rx="${n(rx)}" ry="${n(ry)}" fill="${hex(fill)}"${edge}/>`;
}

function circle(x: number, y: number, r: number, fill: Hsl, stroke?: Hsl | string): string {
  return ellipse(x, y, r, r, fill, stroke);
}

// ---- Colour and geometry ----------------------------------------------------------------

interface Hsl {
  h: number;
  s: number;
  l: number;
}

function hsl(h: number, s: number, l: number): Hsl {
  return { h, s, l };
}

function tone(c: Hsl, dl: number): Hsl {
  return { h: c.h, s: c.s, l: clamp(c.l + dl, 0, 100) };
}

function coatOf(fur: Hsl): Coat {
  return { fur, light: tone(fur, fur.l > 75 ? 8 : 22), dark: tone(fur, -22) };
}

function pinkInner(rng: Rng): Hsl {
  return hsl(rng.float(340, 360), rng.float(40, 65), rng.float(65, 78));
}

function randomColour(rng: Rng): Hsl {
  return hsl(rng.float(0, 360), rng.float(5, 65), rng.float(20, 88));
}

function randomCoat(rng: Rng): Hsl {
  return hsl(rng.float(20, 42), rng.float(10, 70), rng.float(12, 85));
}

function hex({ h, s, l }: Hsl): string {
  const sat = s / 100;
  const lig = l / 100;
  const a = sat * Math.min(lig, 1 - lig);
  const channel = (k: number): string => {
    const t = (k + h / 30) % 12;
    const v = lig - a * Math.max(-1, Math.min(t - 3, 9 - t, 1));
    return Math.round(v * 255)
      .toString(16)
      .padStart(2, '0');
  };
  return `#${channel(0)}${channel(8)}${channel(4)}`;
}

type Point = [number, number];

function polar(r: number, deg: number, x = 0, y = 0): Point {
  const t = (deg * Math.PI) / 180;
  return [x + r * Math.cos(t), y + r * Math.sin(t)];
}

function lerp(a: Point, b: Point, t: number): Point {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t];
}

function points(list: Point[]): string {
  return list.map(pt).join(' ');
}

function pt(p: Point): string {
  return `${n(p[0])} ${n(p[1])}`;
}

/** One decimal is finer than a pixel and keeps the SVG short. */
function n(x: number): string {
  return (Math.round(x * 10) / 10).toString();
}

function clamp(x: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, x));
}
