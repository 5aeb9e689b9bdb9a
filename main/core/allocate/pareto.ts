/**
 * Per-layer Pareto pruning (methods.md §9.4): a point that costs at least as much as another and has at
 * least its error can never be in an optimal allocation, so the solvers only ever see the front. This also
 * absorbs non-monotone profiles (a non-nested basis, measurement noise, §11.8). The front itself is
 * main/core/pareto.ts's, the one the wizard draws too.
 */
export { paretoFront } from '../pareto.ts';
