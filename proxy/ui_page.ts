/** @module */
/** placeholder */
export const UI_PAGE = "<!doctype html><title>ringkv</title>";
