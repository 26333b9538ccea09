/** Mixed-precision search (not built yet). */
export {};
