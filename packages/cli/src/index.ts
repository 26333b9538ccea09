/** The q command line. */
export {};
