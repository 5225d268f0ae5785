/** Does nothing, in the runner process. */
export async function runInRunner(): Promise<null> {
  return null;
}
