/**
 * The synthetic Llama-shaped model of assets/demo/recipe.json (random weights, decaying K/V spectra), for
 * tests that want a model other than stories260K. `rankwise demo` used to generate it; the demo now runs the
 * bundled stories260K.
 */
import fs from 'node:fs';
import { DEMO_RECIPE_PATH, readRecipe, writeSyntheticModel } from '../../main/model/synthetic.ts';

/** Writes the recipe's model into `dir`, a new folder. */
export async function writeRecipeModel(dir: string): Promise<void> {
  if (fs.existsSync(dir)) throw new Error(`${dir} already exists`);
  await writeSyntheticModel(dir, await readRecipe(DEMO_RECIPE_PATH));
}
