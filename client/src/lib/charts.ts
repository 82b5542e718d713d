import {
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineElement,
  PointElement,
  Tooltip,
  type ChartOptions,
} from 'chart.js';

Chart.register(CategoryScale, LinearScale, BarElement, LineElement, PointElement, Legend, Tooltip);
Chart.defaults.font.family = getComputedStyle(document.documentElement)
  .getPropertyValue('--font')
  .trim();
Chart.defaults.font.size = 12;
Chart.defaults.color = '#5f6b7a';
Chart.defaults.borderColor = '#eceff3';
Chart.defaults.plugins.legend.labels.boxWidth = 12;
Chart.defaults.plugins.legend.labels.boxHeight = 12;
// Tests and screenshots see the final frame, and live curves should not wobble.
Chart.defaults.animation = false;

/** Series colours, distinct for up to eight overlaid runs. */
export const PALETTE = [
  '#4f46e5',
  '#0891b2',
  '#d97706',
  '#db2777',
  '#16a34a',
  '#7c3aed',
  '#dc2626',
  '#475569',
];
export const colour = (i: number) => PALETTE[i % PALETTE.length]!;

export const SPLIT_COLOURS = { TRAIN: '#4f46e5', VAL: '#0891b2', TEST: '#d97706' } as const;

export function baseOptions<T extends 'line' | 'bar'>(): ChartOptions<T> {
  return {
    responsive: true,
    maintainAspectRatio: false,
    plugins: { legend: { position: 'bottom' } },
  } as ChartOptions<T>;
}
