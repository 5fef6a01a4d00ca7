// The service's version, as package.json has it (test/openapi.test.ts keeps them equal).
export const PACKAGE_VERSION = '0.1.0'
