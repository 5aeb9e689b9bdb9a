import type { Dispatch } from 'react';
import type { WizardAction, WizardState } from '../state/wizard.ts';

/** Every step reads the whole wizard state and changes it only through actions. */
export interface StepProps {
  state: WizardState;
  dispatch: Dispatch<WizardAction>;
}
