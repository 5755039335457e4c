// Values that test/chaos/harness/global-setup.ts hands to the chaos test files.
import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Where each chaos scenario writes its figures (JSON), and the teardown its summary. */
    chaosReportDir: string;
  }
}
