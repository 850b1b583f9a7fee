// `.proto` files are imported as their text (esbuild `text` loader; scripts/jest-transform.cjs in tests).
declare module '*.proto' {
  const text: string;
  export default text;
}
