import { SubsecondPlayerElement } from './SubsecondPlayerElement.ts';
import { SubsecondPublisherElement } from './SubsecondPublisherElement.ts';

export { parseStreamSource } from './base.ts';
export { SubsecondPlayerElement, type SubsecondPlayerElementEventMap } from './SubsecondPlayerElement.ts';
export {
  SubsecondPublisherElement,
  type SubsecondPublisherElementEventMap,
} from './SubsecondPublisherElement.ts';

/**
 * Registers `<subsecond-player>` and `<subsecond-publisher>` (the SDK bundle does this when it loads in a
 * browser); a name another script defined first is left alone.
 */
export function defineSubsecondElements(
  registry: CustomElementRegistry | undefined = globalThis.customElements,
): void {
  if (!registry) return;
  if (!registry.get('subsecond-player')) registry.define('subsecond-player', SubsecondPlayerElement);
  if (!registry.get('subsecond-publisher')) registry.define('subsecond-publisher', SubsecondPublisherElement);
}

declare global {
  interface HTMLElementTagNameMap {
    'subsecond-player': SubsecondPlayerElement;
    'subsecond-publisher': SubsecondPublisherElement;
  }
}
