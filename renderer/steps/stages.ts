/** The engine's stage names (main/jobs, main/export), as a person would say them. */
const STAGE_TEXT: Record<string, string> = {
  load: 'Loading the model and the texts',
  capture: 'Reading the calibration text through the model',
  profile: 'Fitting each layer and measuring its error at every size',
  'train keys': 'Training key bases (StiefAttention)',
  'train values': 'Training value bases (StiefAttention)',
  effects: "Measuring each layer's effect on the model's predictions",
  finetune: 'Fine-tuning the compressed projections of each layer',
  'eval original': 'Measuring the perplexity of the original model',
  'eval compressed': 'Measuring the perplexity of the compressed model',
  eval: 'Measuring perplexity',
  forward: 'Running the model',
  'export weights': 'Writing the compressed weights',
  'export onnx': 'Writing the ONNX decoder',
  'verify reference': 'Computing reference outputs to check against',
  'verify checkpoint': 'Checking the written checkpoint against the model in memory',
  'verify onnx': 'Checking the ONNX decoder, token by token',
};

export function stageText(stage: string): string {
  return STAGE_TEXT[stage] ?? stage;
}

/** Stages whose units are layers, so "layer i of L" means something. */
export function isPerLayer(stage: string): boolean {
  return stage === 'capture' || stage === 'profile' || stage === 'finetune' || stage.startsWith('train');
}
