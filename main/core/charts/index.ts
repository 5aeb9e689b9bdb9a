/** Chart geometry shared by the wizard (React) and the HTML report (SVG text). */
export * from './geometry.ts';
export * from './palette.ts';
export * from './profile.ts';
export * from './allocation.ts';
export * from './svg.ts';
